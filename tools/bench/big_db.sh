#!/usr/bin/env bash
# Makes a big message store for start-up figures (docs/benchmarks.md, "Start on a big
# database"): 4,000 rooms of 250 messages of about 400 bytes, one a minute (1,000,000
# messages, about 490 MB). Needs the sqlite3 command-line tool (apt-get install sqlite3).
#
#   tools/bench/big_db.sh NATTER_BINARY PATH.db
set -euo pipefail
bin="$1"
db="$2"
rm -f "$db" "$db"-wal "$db"-shm
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# natter makes the schema: start it on the new file, stop it once it listens.
"$bin" serve --tcp 127.0.0.1:0 --udp off --irc off --db "$db" >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
    grep -q "listening tcp" "$log" && break
    sleep 0.05 # polling the server's own "listening" line: this is a script, not a test
done
kill "$pid"
wait "$pid" || true
sqlite3 "$db" <<'SQL'
WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 4000)
INSERT INTO rooms (key, name, topic, topic_by, ephemeral, created_ts, rules)
SELECT '#room' || i, '#room' || i, '', NULL, 0, 1700000000000, '{}' FROM r;
WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 4000),
               m(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM m WHERE j < 250)
INSERT INTO messages (room, mid, ts, nick, sender_key, cid, text, action, notice)
SELECT '#room' || r.i, m.j, 1700000000000 + m.j * 60000, 'user' || (m.j % 50), 'user' || (m.j % 50),
       NULL, printf('%d: %s', m.j, substr(hex(randomblob(200)), 1, 400)), 0, 0
FROM r, m;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
ls -la "$db"
