-- +goose Up
-- API tokens of orgs (`creditd token create ORG --role member|admin`). Only a
-- SHA-256 of the token is stored, never the token: the plaintext is shown
-- once, when it is made. Tokens carry 256 random bits, so a fast hash is
-- enough (there is nothing to guess that a slow hash would protect).
--
-- Low volume, so a foreign key to orgs is cheap here: a token of an org that
-- does not exist cannot be stored, and creditd verify needs no orphan check.
CREATE TABLE api_tokens (
    org_id      text NOT NULL REFERENCES orgs (org_id),
    token_id    text NOT NULL CHECK (token_id ~ '^[0-9a-f]{12}$'),
    secret_hash bytea NOT NULL CHECK (length(secret_hash) = 32),
    role        text NOT NULL CHECK (role IN ('member', 'admin')),
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    PRIMARY KEY (org_id, token_id),
    CHECK (revoked_at IS NULL OR revoked_at >= created_at)
);
-- Every API request looks its token up by hash.
CREATE UNIQUE INDEX api_tokens_secret_hash ON api_tokens (secret_hash);

-- +goose Down
DROP TABLE api_tokens;
