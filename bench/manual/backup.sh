#!/bin/bash
# The operations manual's backup.sh, steps unchanged, to run ON an MCP host as root, where the manual's cron job runs
# it (for comparison by hand; bench/backup_restore.py times the same steps one by one, on the host over SSH).
# The AWS CLI is not installed on the lab's hosts: `aws s3 cp` / `aws s3 ls` are boto3 one-liners in the node venv.
#   ssh -i .lab/ssh/id_ed25519 -o UserKnownHostsFile=.lab/ssh/known_hosts mcpops@<mcp host address> \
#     sudo env PGHOST=<primary address> PGPASSFILE=/root/.pgpass S3_ENDPOINT=http://<infra address>:<lab_s3_port> \
#     AWS_ACCESS_KEY_ID=<lab_s3_access_key> AWS_SECRET_ACCESS_KEY=<lab_s3_secret_key> bash -s < bench/manual/backup.sh
# (addresses in inventories/lab/hosts.yml, ports and keys in inventories/lab/group_vars/all/lab.yml)
set -euo pipefail
PY="${NODE_PYTHON:-/opt/mcp-platform/venv/bin/python}"
BACKUP_DATE=$(date +%Y%m%d_%H%M%S)
BACKUP_DIR="${BACKUP_ROOT:-/backup}/mcp-${BACKUP_DATE}"
S3_ENDPOINT="${S3_ENDPOINT:?S3_ENDPOINT (the lab S3 endpoint URL)}"
S3_BUCKET="${S3_BUCKET:-mcp-backups}"
S3_PREFIX="${S3_PREFIX:-bench/manual}"
CONFIG_DIR="${CONFIG_DIR:-/etc/mcp}"
DATA_DIR="${DATA_DIR:-/var/lib/mcp/data}"
export PGHOST="${PGHOST:?PGHOST (the PostgreSQL primary)}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}" \
  PGDATABASE="${PGDATABASE:-mcp_production}"

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
# aws s3 cp "${BACKUP_DIR}.tar.gz" "s3://${S3_BUCKET}/${S3_PREFIX}/" ; aws s3 ls ...   (stand-in:)
"${PY}" -c 'import boto3, sys; c = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
c.upload_file(sys.argv[2], sys.argv[3], sys.argv[4]); c.head_object(Bucket=sys.argv[3], Key=sys.argv[4])' \
    "${S3_ENDPOINT}" "${BACKUP_DIR}.tar.gz" "${S3_BUCKET}" "${S3_PREFIX}/mcp-${BACKUP_DATE}.tar.gz"
rm -rf "${BACKUP_DIR}" "${BACKUP_DIR}.tar.gz"
echo "Backup completed: s3://${S3_BUCKET}/${S3_PREFIX}/mcp-${BACKUP_DATE}.tar.gz"
