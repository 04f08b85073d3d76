#!/bin/sh
# A CA, the broker's certificate and one client certificate per name, with openssl.
#
#   examples/broker/make-certs.sh OUT_DIR BROKER_HOST CLIENT_NAME...
#   examples/broker/make-certs.sh /etc/mosquitto/gridguard 127.0.0.1 platform gg-demo-001
#
# Each client certificate's common name is the client's name: with use_identity_as_username
# the broker takes it as the username, which the ACL matches (an EMS's name is its device uid).
# BROKER_HOST goes into the broker certificate's subjectAltName (an IP address or a DNS name).
# Keys are unencrypted (the services start unattended): keep OUT_DIR readable only by them.
set -eu
out=$1
host=$2
shift 2
days=${DAYS:-825}
mkdir -p "$out"
cd "$out"
case $host in
*[!0-9.]*) san="DNS:$host" ;;
*) san="IP:$host" ;;
esac
if [ ! -f ca.key ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days "$days" -subj "/CN=gridguard-ca" \
        -keyout ca.key -out ca.crt 2>/dev/null
fi
sign() { # name, extension line
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$1.key" -out "$1.csr" 2>/dev/null
    printf '%s\n' "$2" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
sign server "subjectAltName=$san
extendedKeyUsage=serverAuth"
for name in "$@"; do
    sign "$name" "extendedKeyUsage=clientAuth"
done
echo "certificates in $out: ca.crt, server.crt/.key, $*"
