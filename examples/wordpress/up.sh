#!/bin/sh
# WordPress the better way: one MariaDB server and several WordPress containers
# on a user network, each site with a database and a password of its own.
#
#   examples/wordpress/up.sh [SITES]     SITES defaults to 2: blog1 on :8081, blog2 on :8082, ...
#   examples/wordpress/up.sh down        remove the containers and the network
#
# The database's files stay in the wpdb container; remove it and they are gone.
# Needs the images (see README.md) and bridge networking (lg network).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
net=wordpress
sites="${1:-2}"

if [ "$sites" = down ]; then
    for c in $(lg ps -a --json | python3 -c 'import json, sys; print(" ".join(r["name"] for r in json.load(sys.stdin) if r["name"] == "wpdb" or r["name"].startswith("blog")))'); do
        lg rm -f "$c"
    done
    lg network rm "$net" 2>/dev/null || true
    exit 0
fi

lg show wordpress-web >/dev/null 2>&1 || lg build --target web -t wordpress-web "$here"
lg show wp-mariadb >/dev/null 2>&1 || lg build --target mariadb -t wp-mariadb "$here"
lg network inspect "$net" >/dev/null 2>&1 || lg network create "$net"

lg run -d --name wpdb --network "$net" wp-mariadb >/dev/null
until lg exec wpdb mariadb-admin --silent ping 2>/dev/null; do sleep 0.5; done

i=1
while [ "$i" -le "$sites" ]; do
    site="blog$i"
    password="$(pwgen -s 32 1 2>/dev/null || head -c 24 /dev/urandom | base64 | tr -d '/+=')"
    lg exec wpdb mariadb -e "CREATE DATABASE IF NOT EXISTS $site;
        CREATE USER IF NOT EXISTS '$site'@'%' IDENTIFIED BY '$password';
        GRANT ALL PRIVILEGES ON $site.* TO '$site'@'%';"
    lg run -d --name "$site" --network "$net" -p "$((8080 + i)):80" \
        -e DB_HOST=wpdb -e DB_NAME="$site" -e DB_USER="$site" -e DB_PASSWORD="$password" \
        wordpress-web >/dev/null
    echo "$site: http://localhost:$((8080 + i))/"
    i=$((i + 1))
done
