#!/bin/sh
# Write Debian's WordPress configuration from DB_HOST, DB_NAME, DB_USER and
# DB_PASSWORD, with keys and salts made by pwgen, unless this container has one.
# Debian's wp-config.php reads /etc/wordpress/config-default.php for any host name.
set -eu
config=/etc/wordpress/config-default.php
[ -e "$config" ] && exit 0
: "${DB_PASSWORD:?set DB_PASSWORD (and DB_HOST, DB_NAME, DB_USER)}"
umask 027
{
    echo "<?php"
    echo "define('DB_HOST', '${DB_HOST:-localhost}');"
    echo "define('DB_NAME', '${DB_NAME:-wordpress}');"
    echo "define('DB_USER', '${DB_USER:-wordpress}');"
    echo "define('DB_PASSWORD', '$DB_PASSWORD');"
    echo "define('WP_CONTENT_DIR', '/var/lib/wordpress/wp-content');"
    for key in AUTH_KEY SECURE_AUTH_KEY LOGGED_IN_KEY NONCE_KEY AUTH_SALT SECURE_AUTH_SALT LOGGED_IN_SALT NONCE_SALT; do
        echo "define('$key', '$(pwgen -s 64 1)');"
    done
} > "$config.tmp"
chgrp www-data "$config.tmp"
mv "$config.tmp" "$config"
