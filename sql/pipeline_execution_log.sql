-- scoperouter execution log for BigQuery (production). See docs/report.md.
-- Replace ${PROJECT} and ${DATASET}, e.g.:
--   sed -e 's/${PROJECT}/my-proj/g' -e 's/${DATASET}/nba_orchestration/g' sql/pipeline_execution_log.sql | bq query --use_legacy_sql=false
-- Writers stream rows with insert_rows_json (insertId = the row's id); rows are never updated.

-- One row per decision per date (kind = 'decision') and one row per dispatch outcome
-- (kind = 'dispatch', action = 'dispatch'). SPEC section 5 columns first.
CREATE TABLE IF NOT EXISTS `${PROJECT}.${DATASET}.pipeline_execution_log` (
  decision_id        STRING    NOT NULL OPTIONS (description = 'Row id: d-* decision per date, x-* dispatch outcome'),
  event_id           STRING    OPTIONS (description = 'Event that caused the decision (first caused_by for dispatch rows)'),
  correlation_id     STRING,
  processor          STRING    NOT NULL,
  phase              INT64,
  game_date          DATE      OPTIONS (description = 'The date the processor runs for (partition)'),
  action             STRING    NOT NULL OPTIONS (description = 'run | skip | dispatch'),
  scope              STRING    OPTIONS (description = 'entities | date (NULL for skip)'),
  entity_type        STRING    OPTIONS (description = 'Processor granularity entity type (also for date-scope runs)'),
  entities_requested INT64     OPTIONS (description = 'Entity rows the run asks for: ids, or the universe for date scope'),
  entities_universe  INT64     OPTIONS (description = 'Entities of that type on that date, from relation data'),
  reason             STRING,
  trigger_id         STRING    OPTIONS (description = 'Dispatch rows only; decisions are linked by the _linked view'),
  decided_at         TIMESTAMP OPTIONS (description = 'Decision time; for dispatch rows the trigger fired_at'),
  dispatched_at      TIMESTAMP,
  dispatch_status    STRING,
  attempts           INT64,
  latency_ms         FLOAT64,
  kind               STRING    NOT NULL OPTIONS (description = 'decision | dispatch'),
  granularity        STRING,
  entity_ids         ARRAY<STRING> OPTIONS (description = 'Requested ids (entity scope only)'),
  entities_mapped    INT64     OPTIONS (description = 'Ids the event reached after mapping, also when the scope fell back to date'),
  priority           STRING,
  caused_by          ARRAY<STRING> OPTIONS (description = 'Dispatch rows: the event ids merged into the trigger'),
  error              STRING
)
PARTITION BY game_date
CLUSTER BY processor, correlation_id
OPTIONS (description = 'scoperouter: every routing decision and dispatch outcome');

-- The normalised events (for report --what-if re-planning).
CREATE TABLE IF NOT EXISTS `${PROJECT}.${DATASET}.pipeline_execution_events` (
  event_id       STRING NOT NULL,
  correlation_id STRING,
  source         STRING,
  game_date      DATE,
  decided_at     TIMESTAMP,
  as_of          DATE   OPTIONS (description = 'Planner as-of date used for the decisions'),
  event_json     STRING OPTIONS (description = 'Event.model_dump_json()'),
  skips          STRING OPTIONS (description = 'JSON {reason: processors} of skips without rows of their own (not_an_input, unknown_source)')
)
PARTITION BY game_date
CLUSTER BY source, correlation_id;
-- Tables created before the skips column: ALTER TABLE `${PROJECT}.${DATASET}.pipeline_execution_events` ADD COLUMN IF NOT EXISTS skips STRING;

-- What processors report after a run (SDK): measured waste and duration.
CREATE TABLE IF NOT EXISTS `${PROJECT}.${DATASET}.pipeline_execution_completions` (
  completion_id     STRING NOT NULL,
  processor         STRING NOT NULL,
  game_date         DATE,
  trigger_id        STRING,
  records_processed INT64,
  entities_changed  INT64,
  duration_s        FLOAT64,
  reported_at       TIMESTAMP
)
PARTITION BY game_date
CLUSTER BY processor, trigger_id;

-- Decision rows with trigger_id filled from the dispatch rows that list their event in caused_by.
CREATE OR REPLACE VIEW `${PROJECT}.${DATASET}.pipeline_execution_log_linked` AS
SELECT
  l.* EXCEPT (trigger_id),
  COALESCE(l.trigger_id, t.trigger_id) AS trigger_id
FROM `${PROJECT}.${DATASET}.pipeline_execution_log` AS l
LEFT JOIN (
  SELECT processor, game_date, caused AS event_id, MIN(trigger_id) AS trigger_id
  FROM `${PROJECT}.${DATASET}.pipeline_execution_log`, UNNEST(caused_by) AS caused
  WHERE kind = 'dispatch'
  GROUP BY processor, game_date, caused
) AS t
  ON l.kind = 'decision' AND l.action = 'run'
  AND t.processor = l.processor AND t.game_date = l.game_date AND t.event_id = l.event_id;
