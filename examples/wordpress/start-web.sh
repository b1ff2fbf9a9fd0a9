#!/bin/sh
# WordPress alone: configure it for the database the environment names, then
# Apache in the foreground.
set -eu
/usr/local/bin/wp-config.sh
exec apache2ctl -D FOREGROUND
