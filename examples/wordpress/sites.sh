#!/bin/sh
# Write a compose file for one MariaDB and N WordPress sites, with a password of
# its own for each site (in .env, never in the file) and the SQL that makes each
# site's database and user on the database's first start (initdb/sites.sql).
#
#   examples/wordpress/sites.sh [N]      N defaults to 2: blog1 on :8081, blog2 on :8082, ...
#   cd examples/wordpress && lg compose up -d
#
# Run it again with another N to add sites; existing passwords are kept.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
sites="${1:-2}"
cd "$here"
touch .env
chmod 600 .env
secret() { pwgen -s 32 1 2>/dev/null || head -c 24 /dev/urandom | base64 | tr -d '/+='; }
keep() {  # NAME: add NAME=<random> to .env unless it is there
    grep -q "^$1=" .env || echo "$1=$(secret)" >> .env
}
keep MARIADB_ROOT_PASSWORD
mkdir -p initdb
: > initdb/sites.sql
{
    cat <<'YAML'
# One MariaDB (its data in the named volume db-data) and WordPress sites that reach
# it by the service name "db" on the project's network. Written by sites.sh.
x-site: &site
  image: wordpress-web
  build: {context: ., target: web}
  depends_on:
    db: {condition: service_healthy}
  restart: unless-stopped

services:
  db:
    image: wp-mariadb
    build: {context: ., target: mariadb}
    environment:
      MARIADB_ROOT_PASSWORD: ${MARIADB_ROOT_PASSWORD:?run sites.sh, which writes .env}
    volumes:
      - db-data:/var/lib/mysql
      - ./initdb:/docker-entrypoint-initdb.d:ro
    healthcheck:
      test: ["CMD", "mariadb-admin", "--silent", "ping"]
      interval: 1s
      timeout: 5s
      retries: 120
    restart: unless-stopped
YAML
    i=1
    while [ "$i" -le "$sites" ]; do
        site="blog$i"
        var="$(echo "$site" | tr a-z A-Z)_PASSWORD"
        keep "$var"
        password="$(grep "^$var=" .env | cut -d= -f2-)"
        cat >> initdb/sites.sql <<SQL
CREATE DATABASE IF NOT EXISTS $site;
CREATE USER IF NOT EXISTS '$site'@'%' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON $site.* TO '$site'@'%';
SQL
        cat <<YAML
  $site:
    <<: *site
    ports: ["$((8080 + i)):80"]
    environment: {DB_HOST: db, DB_NAME: $site, DB_USER: $site, DB_PASSWORD: "\${$var}"}
YAML
        i=$((i + 1))
    done
    cat <<'YAML'

volumes:
  db-data:
YAML
} > compose.yaml
chmod 600 initdb/sites.sql
echo "compose.yaml: one MariaDB and $sites sites (blog1 on http://localhost:8081/ ...)"
