-- berth's stand-ins for AWS Secrets Manager / SSM Parameter Store and for IAM roles on one
-- host. The database file lies in the data root, which only root may enter.

-- What a task definition's `secrets[].valueFrom` resolves to, by secret or parameter name.
CREATE TABLE secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  REAL NOT NULL
);

-- Credentials served to a task whose taskRoleArn is the role, on the task credentials
-- endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI). Read on every request, so a
-- `berth role put` reaches running tasks at once.
CREATE TABLE role_credentials (
    role_arn           TEXT PRIMARY KEY,
    access_key_id      TEXT NOT NULL,
    secret_access_key  TEXT NOT NULL,
    session_token      TEXT,
    expiration         TEXT,
    updated_at         REAL NOT NULL
);
