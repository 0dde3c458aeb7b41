#!/bin/sh
# Example: a push subscription delivering completion events to the router with an OIDC
# token (verified by server.auth.oidc in routes.yaml). Replace PROJECT and URL.
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
  --dead-letter-topic scoperouter-dead-letter --max-delivery-attempts 10
