#!/bin/sh
# Writes the seed corpus of fuzz_frame: small hand-made PTC1 frames, valid and invalid, each file a
# byte stream as it would arrive on a connection. Run from anywhere; rewrites corpus/fuzz_frame/.
set -eu
dir="$(cd "$(dirname "$0")" && pwd)/corpus/fuzz_frame"
mkdir -p "$dir"
sid='\033\116\050\272\057\241\116\053\210\077\000\020\040\060\100\120'   # a session uuid
zero='\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000'
w() { printf "$2" >"$dir/$1"; }

# Valid frames.
w output        "\001${sid}\013\000\000\000\010\007\006\005\004\003\002\001hi\n"
w output_empty  "\001${sid}\010\000\000\000\000\000\000\000\000\000\000\000"
w resize        "\002${zero}\004\000\000\000\120\000\030\000"
w ack           "\003${sid}\010\000\000\000\020\047\000\000\000\000\000\000"
w input         "\005${sid}\003\000\000\000ls\r"
w input_empty   "\005${sid}\000\000\000\000"
w request_list  "\006${zero}\015\000\000\000\202\242id\001\242op\244list"
w reply_ok      "\007${zero}\007\000\000\000\202\242id\001\242ok\303"
w state         "\004${sid}\011\000\000\000\201\245state\241x"
w event         "\010${zero}\003\000\000\000\201\240\300"
w extension     "\101${sid}\002\000\000\000\252\273"
w several       "\001${sid}\010\000\000\000\000\000\000\000\000\000\000\000\101${zero}\000\000\000\000\002${zero}\004\000\000\000\120\000\030\000\003${zero}\010\000\000\000\001\000\000\000\000\000\000\000"

# Invalid or incomplete ones.
w core_00       "\000${zero}\000\000\000\000"
w core_09       "\011${zero}\000\000\000\000"
w core_3f       "\077${zero}\001\000\000\000x"
w too_big       "\005${zero}\001\020\000\000xx"
w len_max       "\005${zero}\377\377\377\377"
w short_header  "\001${sid}\013\000"
w short_payload "\001${sid}\013\000\000\000\010\007\006"
w output_short  "\001${zero}\003\000\000\000abc"
w resize_5      "\002${zero}\005\000\000\000\001\002\003\004\005"
w ack_7         "\003${zero}\007\000\000\000\001\002\003\004\005\006\007"
w bad_msgpack   "\006${zero}\005\000\000\000\335\377\377\377\377"
w valid_then_bad "\005${zero}\001\000\000\000a\011${zero}\000\000\000\000"
