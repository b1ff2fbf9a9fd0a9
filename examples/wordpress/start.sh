#!/bin/sh
# The single container: on its first start, a MariaDB data directory, a wordpress
# database and user with a password made by pwgen, and WordPress configured for
# it; then supervisord runs MariaDB and Apache.
set -eu
install -d -o mysql -g mysql /run/mysqld
if [ ! -e /etc/wordpress/config-default.php ]; then
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    mariadbd --user=mysql --skip-networking &
    until mariadb-admin --silent ping 2>/dev/null; do sleep 0.2; done
    DB_PASSWORD="$(pwgen -s 32 1)"
    mariadb <<SQL
CREATE DATABASE IF NOT EXISTS wordpress;
CREATE USER IF NOT EXISTS 'wordpress'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL PRIVILEGES ON wordpress.* TO 'wordpress'@'localhost';
SQL
    mariadb-admin shutdown
    wait
    DB_HOST=localhost DB_PASSWORD="$DB_PASSWORD" /usr/local/bin/wp-config.sh
fi
exec /usr/bin/supervisord -n -c /etc/supervisor/supervisord.conf
