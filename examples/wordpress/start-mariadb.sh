#!/bin/sh
# A MariaDB server for WordPress containers on a user network. On its first start
# (no marker in its data directory: the image's own datadir, as Debian's package
# made it, or a new volume filled from it) it sets a root password
# (MARIADB_ROOT_PASSWORD, else one made by pwgen and printed once) that lets root
# connect from the network, and runs the .sql files of /docker-entrypoint-initdb.d,
# as the official image does (the compose file mounts the sites' databases there).
set -eu
install -d -o mysql -g mysql /run/mysqld
[ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
if [ ! -e /var/lib/mysql/.initialised ]; then
    password="${MARIADB_ROOT_PASSWORD:-$(pwgen -s 32 1)}"
    [ -n "${MARIADB_ROOT_PASSWORD:-}" ] || echo "generated MariaDB root password: $password"
    mariadbd --user=mysql --skip-networking &
    until mariadb-admin --silent ping 2>/dev/null; do sleep 0.2; done
    mariadb <<SQL
CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
SQL
    for sql in /docker-entrypoint-initdb.d/*.sql; do
        [ -e "$sql" ] && mariadb < "$sql"
    done
    mariadb-admin shutdown
    wait
    touch /var/lib/mysql/.initialised
fi
exec mariadbd --user=mysql
