#!/usr/bin/env bash
# docker-compose.yaml's Redis (redis image): the local stack's ACL users (redis/users.acl), each with
# the SHA-256 of its password from REDIS_PASSWORD_<USER>; an append-only file in /data.
set -euo pipefail
text=$(grep -v '^#' /opt/gpubroker/redis/users.acl)
for user in $(awk '$1 == "user" && $2 != "default" {print $2}' <<<"$text"); do
  password=REDIS_PASSWORD_${user^^}
  text=${text//@${user^^}@/$(printf '%s' "${!password:?set $password in astro/.env}" | sha256sum | cut -d' ' -f1)}
done
(umask 077 && printf '%s\n' "$text" >/tmp/users.acl)
exec redis-server --aclfile /tmp/users.acl --dir /data --appendonly yes --appendfsync everysec
