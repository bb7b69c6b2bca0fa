#!/usr/bin/env bash
# Writes the seed corpora of the fuzz targets, fuzz/corpus/<target>/, from the recorded vendor
# bodies in tests/fixtures/ (and the TOML in examples/ and README.md, and fuzz/seeds/).
# Idempotent: seeds are named after their source, so a rerun overwrites them and leaves the
# inputs a fuzzer added alone. Needs bash and awk; jq, if present, adds the recorded headers
# of error responses.
set -euo pipefail
cd "$(dirname "$0")"
fx=../tests/fixtures
out=corpus

seed() { # seed TARGET NAME  (contents on stdin)
  mkdir -p "$out/$1"
  cat >"$out/$1/$2"
}

# Streams: one leading byte chooses how the body is cut into reads (see src/fuzzing.rs): here
# reads of 1 and 17 bytes, and (high bit) for `sse` a 64-byte event bound, for the vendor
# streams the whole body at once.
stream_seeds() { # stream_seeds TARGET FILE...
  local t=$1 f name
  shift
  for f in "$@"; do
    name=$(echo "${f#"$fx"/}" | tr '/' '_')
    for b in 00 10 80; do
      { printf "\\x$b"; cat "$f"; } | seed "$t" "$b-$name"
    done
  done
}

anthropic_sse=( "$fx"/anthropic/*.sse )
gemini_sse=( "$fx"/gemini/*.sse )
openai_sse=()
for f in "$fx"/*/*.sse; do
  case $f in "$fx"/anthropic/* | "$fx"/gemini/*) ;; *) openai_sse+=("$f") ;; esac
done
stream_seeds sse "$fx"/*/*.sse
stream_seeds openai_stream "${openai_sse[@]}"
stream_seeds anthropic_stream "${anthropic_sse[@]}"
stream_seeds gemini_stream "${gemini_sse[@]}"

# Whole bodies: success bodies to the response targets, error bodies to the error targets
# as "STATUS\nheader: value\n...\n\nBODY".
for f in "$fx"/*/*.json; do
  case $f in *.http.json) continue ;; esac
  vendor=$(basename "$(dirname "$f")")
  base=$(basename "$f" .json)
  name="$vendor-$base"
  case $vendor in
    anthropic) family=anthropic ;;
    gemini) case $base in openai_compat*) family=openai ;; *) family=gemini ;; esac ;;
    headers) continue ;;
    *) family=openai ;;
  esac
  case $base in
    error_* | vertex_error_*)
      status=$(echo "$base" | sed -E 's/^(vertex_)?error_([0-9]{3}).*/\2/')
      sidecar="${f%.json}.http.json"
      {
        echo "$status"
        if command -v jq >/dev/null 2>&1 && [ -f "$sidecar" ]; then
          jq -r '.response.headers // {} | to_entries[] | .key as $k
            | (.value | if type == "array" then .[] else . end) | "\($k): \(.)"' \
            "$sidecar" || true
        fi
        if [ "$status" = 429 ]; then
          echo "retry-after: 7"
          echo "anthropic-ratelimit-requests-remaining: 0"
          echo "anthropic-ratelimit-requests-reset: 2026-01-01T00:00:30Z"
          echo "x-ratelimit-remaining-tokens: 0"
          echo "x-ratelimit-reset-tokens: 1m30.5s"
        fi
        echo
        cat "$f"
      } | seed "${family}_error" "$name"
      ;;
    *) seed "${family}_response" "$name" <"$f" ;;
  esac
done
# Gemini's JSON-array stream body (no `?alt=sse`).
for f in "$fx"/gemini/*.json_array.json; do
  seed gemini_response "gemini-$(basename "$f")" <"$f"
done

# Configuration files: the example, and every ```toml block of the README.
seed config support_bot.toml <../examples/support_bot.toml
awk -v dir="$out/config" '
  /^```toml/ { n++; file = sprintf("%s/readme-%02d.toml", dir, n); inside = 1; next }
  /^```/ && inside { inside = 0; close(file); next }
  inside { print > file }
' ../README.md

# Gateway request bodies: small hand-written ones, committed in fuzz/seeds/.
for f in seeds/chat_request/*.json; do
  seed chat_request "$(basename "$f")" <"$f"
done

for d in "$out"/*/; do
  echo "$(basename "$d"): $(find "$d" -type f | wc -l) seeds"
done
