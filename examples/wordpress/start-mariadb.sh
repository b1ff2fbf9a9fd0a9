#!/bin/sh
# A MariaDB server for WordPress containers on a user network. On its first start
# it makes its data directory and a root password (MARIADB_ROOT_PASSWORD, else one
# made by pwgen and printed once); root may connect from the network; and it runs
# the .sql files of /docker-entrypoint-initdb.d, as the official image does (the
# compose file mounts the sites' databases and users there).
set -eu
install -d -o mysql -g mysql /run/mysqld
if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    password="${MARIADB_ROOT_PASSWORD:-$(pwgen -s 32 1)}"
    [ -n "${MARIADB_ROOT_PASSWORD:-}" ] || echo "generated MariaDB root password: $password"
    mariadbd --user=mysql --skip-networking &
    until mariadb-admin --silent ping 2>/dev/null; do sleep 0.2; done
    mariadb <<SQL
CREATE USER 'root'@'%' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
SQL
    for sql in /docker-entrypoint-initdb.d/*.sql; do
        [ -e "$sql" ] && mariadb < "$sql"
    done
    mariadb-admin shutdown
    wait
fi
exec mariadbd --user=mysql
