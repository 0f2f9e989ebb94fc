#!/usr/bin/env bash
# Smoke test of examples/scrape: a fixture site of 31 linked pages served by nginx (relative,
# root-relative, absolute and scheme-relative links, "./" and "../", fragments, a redirect, a
# broken link, a page that always answers 503, links off the site and to mailto:), crawled with
# 3 requests at once and 2 retries. Checks every page found with its title, the broken and the
# failed page, the retries in nginx's access log, the per-host limit, and --max-pages.
#   check_scrape.sh PATH/TO/scrape
set -euo pipefail
scrape=$1
source "$(dirname "${BASH_SOURCE[0]}")/smoke_lib.sh"
nginx=$(command -v nginx || true)
[[ -z $nginx && -x /usr/sbin/nginx ]] && nginx=/usr/sbin/nginx
[[ -n $nginx ]] || { echo "SKIP: nginx is not installed (Debian package nginx; build.sh installs it)"; exit 77; }

work=$(mktemp -d)
nginx_pid=
cleanup() {
    if [[ -n $nginx_pid ]]; then kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
site="http://127.0.0.1:$port"
www=$work/www
mkdir -p "$www/a" "$www/b"

page() {  # page FILE TITLE LINKS...
    local file=$1 title=$2 link
    shift 2
    {
        printf '<!doctype html>\n<html><head><title>%s</title></head><body>\n<h1>%s</h1>\n' "$title" "$title"
        for link in "$@"; do printf '<p><a href="%s">%s</a></p>\n' "$link" "$link"; done
        printf '</body></html>\n'
    } >"$www/$file"
}
page index.html "Home" a/index.html b/ "/about.html" "#top" "mailto:someone@example.invalid" \
    "http://example.invalid/elsewhere.html" gone.html /flaky old.html
printf '<!doctype html>\n<html><head><title>\n   About\n   this   site\n</title></head><body><a href="index.html#x">home</a></body></html>\n' \
    >"$www/about.html"
# Section a: relative links, "./", "../", fragments.
page a/index.html "Section A" p1.html ./p2.html "../index.html"
for i in $(seq 1 12); do
    page "a/p$i.html" "Page a$i" "p$((i % 12 + 1)).html#next" "./p$(((i + 5) % 12 + 1)).html" "../a/index.html" "/b/p$i.html"
done
# Section b: absolute and scheme-relative links (b/ is served as b/index.html).
page b/index.html "Section B" "$site/b/p1.html" "//127.0.0.1:$port/b/p2.html"
for i in $(seq 1 12); do
    page "b/p$i.html" "Page b$i" "$site/b/p$((i % 12 + 1)).html" "//127.0.0.1:$port/a/p$i.html" "$site/"
done

cat >"$work/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 64; }
http {
    log_format uri '\$request_uri \$status';
    access_log $work/access.log uri;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    types { text/html html; }
    server {
        listen 127.0.0.1:$port;
        root $www;
        location = /flaky { return 503 "try later\n"; }
        location = /old.html { return 301 /about.html; }
    }
}
CONF
"$nginx" -e "$work/error.log" -p "$work/" -c "$work/nginx.conf" &
nginx_pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "$site/" && break; sleep 0.05; done
curl -s -o /dev/null "$site/" || fail "nginx did not start: $(cat "$work/error.log")"

status=0
out=$(timeout 60 "$scrape" --per-host 3 --retries 2 --timeout 5 "$site/") || status=$?
echo "$out"
[[ $status -eq 1 ]] || fail "scrape should exit with 1 when a page fails (got $status)"

# 30 pages with their titles (the site's 28 files, the home page also as /index.html and the
# about page also through the redirect /old.html), the broken link, the failing page.
expect() {  # expect STATUS URL TEXT
    grep -qE "^$1  $(sed 's/[.?]/\\&/g' <<<"$2") +$(sed 's/[.()]/\\&/g' <<<"$3")\$" <<<"$out" || fail "expected '$1 $2 $3' in the report"
}
expect 200 "$site/" "Home"
expect 200 "$site/index.html" "Home"
expect 200 "$site/about.html" "About this site"
expect 200 "$site/old.html" "About this site"
expect 200 "$site/a/index.html" "Section A"
expect 200 "$site/b/" "Section B"
for i in $(seq 1 12); do
    expect 200 "$site/a/p$i.html" "Page a$i"
    expect 200 "$site/b/p$i.html" "Page b$i"
done
expect 404 "$site/gone.html" "(broken link, from $site/)"
expect 503 "$site/flaky" "(HTTP 503 (after 3 attempts), from $site/)"
[[ $(grep -c '^200  ' <<<"$out") -eq 30 ]] || fail "expected 30 pages with status 200"
grep -q 'example.invalid' <<<"$out" && fail "a link off the site was followed"
grep -q '#' <<<"$out" && fail "a fragment was kept"
summary=$(tail -n1 <<<"$out")
[[ $summary =~ ^32\ pages\ in\ [0-9.]+\ s:\ 30\ ok,\ 1\ broken\ link,\ 1\ failed\;\ at\ most\ ([0-9]+)\ requests\ at\ once\ to\ a\ host$ ]] ||
    fail "unexpected summary: $summary"
((BASH_REMATCH[1] >= 1 && BASH_REMATCH[1] <= 3)) || fail "more than 3 requests at once to the host"
# Each page fetched once; /flaky three times (two retries).
[[ $(grep -c '^/flaky 503$' "$work/access.log") -eq 3 ]] || fail "expected 3 attempts at /flaky in nginx's log"
[[ $(grep -c '^/a/p7.html 200$' "$work/access.log") -eq 1 ]] || fail "a page was fetched more than once"

# --max-pages stops the crawl.
out=$(timeout 60 "$scrape" --per-host 2 --max-pages 5 "$site/") || true
[[ $(tail -n1 <<<"$out") =~ ^5\ pages\ in ]] || fail "--max-pages 5: $(tail -n1 <<<"$out")"
echo "scrape: all checks passed"
