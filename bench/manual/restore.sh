#!/bin/bash
# The operations manual's restore.sh (download, untar, psql < dump, untar volumes), to run ON an MCP host as root,
# restoring into a fresh database and folder (for comparison by hand). `aws s3 cp` is a boto3 one-liner in the node venv.
#   ssh ... mcpops@<mcp host address> sudo env PGHOST=<primary address> PGPASSFILE=/root/.pgpass \
#     S3_ENDPOINT=http://<infra address>:<lab_s3_port> AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
#     bash -s -- bench/manual/mcp-20250101_020000.tar.gz < bench/manual/restore.sh
set -euo pipefail
PY="${NODE_PYTHON:-/opt/mcp-platform/venv/bin/python}"
BACKUP_KEY=${1:?"Usage: $0 <backup object key>"}
RESTORE_DIR="${RESTORE_ROOT:-/tmp}/restore-$(date +%Y%m%d_%H%M%S)"
S3_ENDPOINT="${S3_ENDPOINT:?S3_ENDPOINT (the lab S3 endpoint URL)}"
S3_BUCKET="${S3_BUCKET:-mcp-backups}"
export PGHOST="${PGHOST:?PGHOST (the PostgreSQL primary)}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
TARGET_DB="${TARGET_DB:-mcp_bench_restore_manual}"

echo "Restoring from: ${BACKUP_KEY}"
"${PY}" -c 'import boto3, sys; boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1").download_file(
    sys.argv[2], sys.argv[3], sys.argv[4])' "${S3_ENDPOINT}" "${S3_BUCKET}" "${BACKUP_KEY}" "${RESTORE_DIR}.tar.gz"
mkdir -p "${RESTORE_DIR}/files"
tar -xzf "${RESTORE_DIR}.tar.gz" -C "${RESTORE_DIR}"
createdb "${TARGET_DB}"
psql -q -d "${TARGET_DB}" < "$(ls -d "${RESTORE_DIR}"/mcp-*)/postgres.sql" > /dev/null
tar -xzf "$(ls -d "${RESTORE_DIR}"/mcp-*)/volumes.tar.gz" -C "${RESTORE_DIR}/files"
rm -f "${RESTORE_DIR}.tar.gz"
echo "Restoration completed into database ${TARGET_DB} and ${RESTORE_DIR}/files (drop and remove them afterwards)"
