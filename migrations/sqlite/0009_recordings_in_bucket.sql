-- Where a recording's file is kept, sqlite flavour (same as the other file): 'local' on the
-- disk of the node named in the row, or 'bucket' in the S3-compatible bucket of
-- [recordings.s3], which every node reads. A finished recording moves to the bucket once
-- its upload has completed; until then it stays 'local' and its node retries.
ALTER TABLE recordings ADD COLUMN storage TEXT NOT NULL DEFAULT 'local';
CREATE INDEX recordings_node_storage ON recordings(node, storage, ended_at);
