#!/bin/bash
# The operations manual's backup.sh, steps unchanged, pointed at the lab (for comparison by hand; bench/backup_restore.py
# times the same steps one by one). The AWS CLI is not installed here: `aws s3 cp` is a boto3 upload_file one-liner.
#   PGPORT=25432 PGDATABASE=mcp_bench DATA_DIR=.lab/bench/files bench/manual/backup.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${ROOT}/.venv/bin/python"
BACKUP_DATE=$(date +%Y%m%d_%H%M%S)
WORK="${WORK:-${ROOT}/.lab/bench/manual}"
BACKUP_DIR="${WORK}/mcp-${BACKUP_DATE}"
S3_BUCKET="${S3_BUCKET:-mcp-backups}"
S3_PREFIX="${S3_PREFIX:-bench/manual}"
CONFIG_DIR="${CONFIG_DIR:-${ROOT}/.lab/hosts/mcp-1/etc/mcp}"
DATA_DIR="${DATA_DIR:-${ROOT}/.lab/bench/files}"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-25432}" PGUSER="${PGUSER:-postgres}" PGDATABASE="${PGDATABASE:-mcp_bench}"

echo "Starting backup: ${BACKUP_DATE}"
mkdir -p "${BACKUP_DIR}"
echo "Backing up databases..."
pg_dump > "${BACKUP_DIR}/postgres.sql"
echo "Backing up configurations..."
cp -r "${CONFIG_DIR}" "${BACKUP_DIR}/config"
echo "Backing up persistent volumes..."
tar -czf "${BACKUP_DIR}/volumes.tar.gz" "${DATA_DIR}" 2>/dev/null
cat > "${BACKUP_DIR}/manifest.json" << MANIFEST
{
  "timestamp": "${BACKUP_DATE}",
  "type": "full",
  "components": ["database", "config", "volumes"],
  "size": "$(du -sh "${BACKUP_DIR}" | cut -f1)"
}
MANIFEST
tar -czf "${BACKUP_DIR}.tar.gz" -C "$(dirname "${BACKUP_DIR}")" "$(basename "${BACKUP_DIR}")"
# aws s3 cp "${BACKUP_DIR}.tar.gz" "s3://${S3_BUCKET}/${S3_PREFIX}/"   (stand-in:)
"${PY}" -c 'import boto3, sys; boto3.client("s3", endpoint_url="http://127.0.0.1:25900", region_name="us-east-1",
    aws_access_key_id="lab-access-key", aws_secret_access_key="lab-secret-key").upload_file(sys.argv[1], sys.argv[2], sys.argv[3])' \
    "${BACKUP_DIR}.tar.gz" "${S3_BUCKET}" "${S3_PREFIX}/mcp-${BACKUP_DATE}.tar.gz"
rm -rf "${BACKUP_DIR}" "${BACKUP_DIR}.tar.gz"
echo "Backup completed: s3://${S3_BUCKET}/${S3_PREFIX}/mcp-${BACKUP_DATE}.tar.gz"
