#!/bin/sh
# The Alertmanager container's entrypoint (docker-compose.yaml): renders the receivers of alertmanager.yml from the
# environment, then runs Alertmanager on the result. Both receivers, pager and team, post to Slack through
#   ALERTMANAGER_SLACK_WEBHOOK_URL  an incoming webhook, if set; else
#   RAGOPS_SLACK_TOKEN              the bot token ragops posts its reports with (chat.postMessage, Bearer auth), to
#                                   RAGOPS_SLACK_CHANNEL (default #ragops).
# With neither, they are null receivers, and this says so at every start: alerts then reach no one, and show only at
# http://alertmanager:9093. Secrets go to files read by Alertmanager (never into the config), mode 600.
# `start.sh --render-only` prints the config it would run and exits (tests/deploy/test_compose.py).
set -eu
here=$(dirname "$0")
template="${ALERTMANAGER_TEMPLATE:-$here/alertmanager.yml}"
secrets="${ALERTMANAGER_SECRETS_DIR:-/tmp/alertmanager-secrets}"
rendered="${ALERTMANAGER_RENDERED:-/tmp/alertmanager.yml}"
channel="${RAGOPS_SLACK_CHANNEL:-#ragops}"
case "$channel" in
  *[!A-Za-z0-9#@._-]*) echo "alertmanager: RAGOPS_SLACK_CHANNEL '$channel' is not a Slack channel name" >&2; exit 64;;
esac
case "${ALERTMANAGER_SLACK_WEBHOOK_URL:-}" in
  ""|https://*) ;;
  *) echo "alertmanager: ALERTMANAGER_SLACK_WEBHOOK_URL is not an https:// URL" >&2; exit 64;;
esac
case "${ALERTMANAGER_SLACK_WEBHOOK_URL:-}" in  # no space, quote or control character (a newline) in a URL
  *[!A-Za-z0-9:/._~%+=\&?#@-]*) echo "alertmanager: ALERTMANAGER_SLACK_WEBHOOK_URL is not a URL (a space," \
                                     "quote or newline in it)" >&2; exit 64;;
esac
case "${RAGOPS_SLACK_TOKEN:-}" in  # it becomes an Authorization header: no space or newline
  *[!A-Za-z0-9._-]*) echo "alertmanager: RAGOPS_SLACK_TOKEN is not a Slack token (a space, quote or newline in it)" >&2
                     exit 64;;
esac
umask 077
mkdir -p "$secrets"

receiver() {  # $1: the receiver's name
  echo "  - name: $1"
  if [ -n "${ALERTMANAGER_SLACK_WEBHOOK_URL:-}" ]; then
    printf '    slack_configs:\n      - api_url_file: %s/slack-webhook\n        send_resolved: true\n' "$secrets"
  elif [ -n "${RAGOPS_SLACK_TOKEN:-}" ]; then
    printf '    slack_configs:\n      - api_url: https://slack.com/api/chat.postMessage\n' 
    printf '        http_config:\n          authorization:\n            credentials_file: %s/slack-token\n' "$secrets"
    printf "        channel: '%s'\n        send_resolved: true\n" "$channel"
  fi
}

if [ -n "${ALERTMANAGER_SLACK_WEBHOOK_URL:-}" ]; then
  printf '%s' "$ALERTMANAGER_SLACK_WEBHOOK_URL" > "$secrets/slack-webhook"
  echo "alertmanager: alerts go to Slack through the webhook ALERTMANAGER_SLACK_WEBHOOK_URL" >&2
elif [ -n "${RAGOPS_SLACK_TOKEN:-}" ]; then
  printf '%s' "$RAGOPS_SLACK_TOKEN" > "$secrets/slack-token"
  echo "alertmanager: alerts go to Slack channel $channel with RAGOPS_SLACK_TOKEN" >&2
else
  echo "alertmanager: WARNING: no RAGOPS_SLACK_TOKEN or ALERTMANAGER_SLACK_WEBHOOK_URL: the receivers pager and team" \
       "are null receivers and alerts reach no one (see docs/production.md, Monitoring and alerting)" >&2
fi

{
  awk '/^receivers:/ {skip=1; next} /^[a-z_]+:/ {skip=0} !skip' "$template"
  echo "receivers:"
  receiver pager
  receiver team
} > "$rendered"

if [ "${1:-}" = "--render-only" ]; then
  cat "$rendered"
  exit 0
fi
exec /bin/alertmanager --config.file="$rendered" --storage.path=/alertmanager "$@"
