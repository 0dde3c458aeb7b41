#!/bin/sh
# Example: a push subscription delivering completion events to the router with an OIDC
# token, verified either by Cloud Run IAM (--no-allow-unauthenticated; then no server.auth in
# routes.yaml: Cloud Run removes the verified token's signature, SIGNATURE_REMOVED_BY_GOOGLE)
# or by server.auth.oidc on a service deployed --allow-unauthenticated -- not both
# (deploy/README.md). Replace PROJECT and URL.
# The router acks (200 dead_lettered) an event it can never route; a 503 (store failing,
# stopping, certificates unavailable) asks for a retry: the retry policy and 100 attempts
# keep such a message coming back for about 16 hours before the dead-letter policy takes
# it (10 immediate attempts lasted minutes). A 400/401/413 (a broken envelope, a wrong
# token, a body over max_body_bytes) ends there too, after those 16 hours.
# The dead-letter policy's topic, scoperouter-push-undelivered, receives the pipeline's raw
# messages Pub/Sub gave up delivering to the router; it is not server.dead_letter_topic
# (scoperouter-dead-letter in deploy/README.md), which receives scoperouter's own JSON
# records of the events it rejected: keep them apart, their consumers read different
# messages. Pub/Sub's service agent needs roles/pubsub.publisher on it and
# roles/pubsub.subscriber on this subscription for the policy to work.
set -eu
PROJECT=${PROJECT:?set PROJECT}
URL=${URL:?set URL, e.g. https://scoperouter-xxxx.a.run.app}
gcloud pubsub subscriptions create scoperouter-push \
  --project "$PROJECT" \
  --topic nba-phase2-raw-complete \
  --push-endpoint "$URL/events" \
  --push-auth-service-account "scoperouter-push@$PROJECT.iam.gserviceaccount.com" \
  --push-auth-token-audience "$URL/events" \
  --ack-deadline 30 \
  --min-retry-delay 10s --max-retry-delay 600s \
  --dead-letter-topic scoperouter-push-undelivered --max-delivery-attempts 100
