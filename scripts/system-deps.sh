#!/usr/bin/env bash
# System packages the commands need: `rabbitmq` (only if no broker answers and none is installed), `chromium`.
set -euo pipefail
cd "$(dirname "$0")/.."
source_apt() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    if [ ! -f .run/apt-updated ]; then apt-get update -qq && mkdir -p .run && touch .run/apt-updated; fi
    echo "Installing $* with apt-get ..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    return 1
  fi
}
have_rabbit() { [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || command -v rabbitmq-server >/dev/null; }
broker_answers() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

for need in "$@"; do
  case "$need" in
    rabbitmq)
      if [ -z "${RABBITLENS_AMQP_URL:-}" ] && ! broker_answers && ! have_rabbit; then
        source_apt rabbitmq-server || {
          echo "No RabbitMQ broker answers on 127.0.0.1:5672 and rabbitmq-server is not installed." >&2
          echo "Install it (Debian: sudo apt-get install rabbitmq-server), point RABBITLENS_AMQP_URL at a" >&2
          echo "broker, or run 'docker compose up' for the app with a broker in containers." >&2
          exit 1
        }
      fi ;;
    rabbitmq-server)  # the tests start private nodes: they need the server itself
      have_rabbit || source_apt rabbitmq-server || {
        echo "The tests need rabbitmq-server (Debian: sudo apt-get install rabbitmq-server)." >&2; exit 1; } ;;
    chromium)
      [ -x /usr/bin/chromium ] || source_apt chromium || {
        echo "The browser tests need Debian's chromium (sudo apt-get install chromium)." >&2; exit 1; } ;;
    *) echo "unknown need: $need" >&2; exit 2 ;;
  esac
done
