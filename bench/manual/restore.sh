#!/bin/bash
# The operations manual's restore.sh (download, untar, psql < dump, untar volumes), pointed at the lab, restoring into a
# fresh database and folder (for comparison by hand). `aws s3 cp` is a boto3 download_file one-liner here.
#   bench/manual/restore.sh bench/manual/mcp-20250101_020000.tar.gz
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${ROOT}/.venv/bin/python"
BACKUP_KEY=${1:?"Usage: $0 <backup object key>"}
RESTORE_DIR="${ROOT}/.lab/bench/restore-$(date +%Y%m%d_%H%M%S)"
S3_BUCKET="${S3_BUCKET:-mcp-backups}"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-25432}" PGUSER="${PGUSER:-postgres}"
TARGET_DB="${TARGET_DB:-mcp_bench_restore_manual}"

echo "Restoring from: ${BACKUP_KEY}"
"${PY}" -c 'import boto3, sys; boto3.client("s3", endpoint_url="http://127.0.0.1:25900", region_name="us-east-1",
    aws_access_key_id="lab-access-key", aws_secret_access_key="lab-secret-key").download_file(sys.argv[1], sys.argv[2], sys.argv[3])' \
    "${S3_BUCKET}" "${BACKUP_KEY}" "${RESTORE_DIR}.tar.gz"
mkdir -p "${RESTORE_DIR}/files"
tar -xzf "${RESTORE_DIR}.tar.gz" -C "${RESTORE_DIR}"
createdb "${TARGET_DB}"
psql -q -d "${TARGET_DB}" < "$(ls -d "${RESTORE_DIR}"/mcp-*)/postgres.sql" > /dev/null
tar -xzf "$(ls -d "${RESTORE_DIR}"/mcp-*)/volumes.tar.gz" -C "${RESTORE_DIR}/files"
rm -f "${RESTORE_DIR}.tar.gz"
echo "Restoration completed into database ${TARGET_DB} and ${RESTORE_DIR}/files (drop and remove them afterwards)"
