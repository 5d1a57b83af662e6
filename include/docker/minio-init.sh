#!/bin/sh
# One-shot set-up of the lake in MinIO (the minio-init service): the bucket, a policy limited to it, and
# the user the Airflow connection ledgerlake_s3 logs in as. Idempotent. MC_HOST_local carries the root login.
set -eu

bucket="${LEDGERLAKE_BUCKET}"
mc mb --ignore-existing "local/${bucket}"
mc anonymous set none "local/${bucket}"

cat > /tmp/ledgerlake-lake.json <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
     "Resource": ["arn:aws:s3:::${bucket}"]},
    {"Effect": "Allow",
     "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts"],
     "Resource": ["arn:aws:s3:::${bucket}/*"]}
  ]
}
JSON
mc admin policy create local ledgerlake-lake /tmp/ledgerlake-lake.json
mc admin user add local "${LEDGERLAKE_S3_ACCESS_KEY_ID}" "${LEDGERLAKE_S3_SECRET_ACCESS_KEY}" >/dev/null
# attach refuses a policy that is already attached, so look first (plain sh: the mc image has no grep).
case "$(mc admin user info local "${LEDGERLAKE_S3_ACCESS_KEY_ID}" --json)" in
  *ledgerlake-lake*) ;;
  *) mc admin policy attach local ledgerlake-lake --user "${LEDGERLAKE_S3_ACCESS_KEY_ID}" ;;
esac
echo "lake bucket ${bucket} ready"
