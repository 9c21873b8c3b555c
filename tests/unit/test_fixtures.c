/*
 * test_fixtures: proves that proto/fixtures/ (the golden PTC1 files) agree with libptc both ways,
 * and that they cannot drift from the encoder.
 *
 * For every case of manifest.json: the .bin equals the "hex"; decoding the .bin (ptc_frame_decode,
 * and ptc_stream fed whole and byte by byte) gives exactly the frames the entry describes;
 * encoding the entry (msgpack-c packers and ptc_header_encode, not the libptc builders) gives the
 * .bin's bytes; and a receiver's verdict (accept, close code, or bad_request reply) is the stated
 * one. Then the generator is run into a temporary directory and its output must equal the
 * committed files, and the examples in docs/protocol.md must equal what it renders.
 *
 * The generator and its JSON converter are compiled in by #include (FIXTURES_NO_MAIN drops the
 * generator's main), so this test and ptc-fixtures cannot use different converters, and no CMake
 * target has to be shared between them.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIXTURES_NO_MAIN
#include "../../proto/fixtures/gen.c"

#define MANIFEST FIXTURES_DIR "/manifest.json"
#define DOCS FIXTURES_DIR "/../../docs/protocol.md"

static json_t *load_manifest(void)
{
    json_error_t jerr;
    json_t *m = json_load_file(MANIFEST, 0, &jerr);

    cr_assert_not_null(m, "%s:%d: %s", MANIFEST, jerr.line, jerr.text);
    cr_assert(json_is_array(json_object_get(m, "cases")));
    return m;
}

/* Reads a whole file into b; false if it cannot be read. */
static bool read_bin(const char *dir, const char *name, struct ptc_buf *b)
{
    char path[4096], chunk[4096];
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (!f)
        return false;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        cr_assert_eq(ptc_buf_append(b, chunk, n), 0);
    fclose(f);
    return true;
}

static const char *case_name(const json_t *entry)
{
    return json_string_value(json_object_get(entry, "name"));
}

/* The manifest's frame description without the generator's annotation (not derivable from bytes). */
static json_t *wire_part(const json_t *fr)
{
    json_t *copy = json_deep_copy(fr);

    json_object_del(copy, "reply_to");
    return copy;
}

static void expect_json_eq(const json_t *got, const json_t *want, const char *what, const char *name, size_t i)
{
    char *g = json_dumps(got, JSON_ENCODE_ANY | JSON_SORT_KEYS);
    char *w = json_dumps(want, JSON_ENCODE_ANY | JSON_SORT_KEYS);

    cr_expect(json_equal(got, want), "%s: %s %zu:\n  decoded:  %s\n  manifest: %s", name, what, i, g, w);
    free(g);
    free(w);
}

Test(fixtures, manifest_lists_every_file_and_covers_every_type)
{
    json_t *m = load_manifest(), *cases = json_object_get(m, "cases"), *entry, *fr;
    bool seen_type[256] = {false}, seen_op[PTC_OP__COUNT] = {false}, seen_reply[PTC_OP__COUNT] = {false};
    bool seen_code[PTC_C__COUNT] = {false}, seen_state[PTC_ST__COUNT] = {false};
    int invalid = 0;
    size_t i, k, files = 0;
    struct dirent *de;
    DIR *d;

    cr_expect_eq(json_integer_value(json_object_get(m, "protocol")), PTC_VERSION);
    json_array_foreach(cases, i, entry) {
        const char *name = case_name(entry), *file = json_string_value(json_object_get(entry, "file"));
        char want[256];

        cr_assert_not_null(name);
        snprintf(want, sizeof want, "%s.bin", name);
        cr_expect_str_eq(file, want);
        for (k = 0; k < i; k++)
            cr_expect_str_neq(case_name(json_array_get(cases, k)), name, "duplicate case %s", name);
        if (!json_is_true(json_object_get(entry, "valid")))
            invalid++;
        json_array_foreach(json_object_get(entry, "frames"), k, fr) {
            json_t *mp = json_object_get(fr, "msgpack");
            const char *s;

            seen_type[json_integer_value(json_object_get(fr, "code"))] = true;
            if (!mp)
                continue;
            if ((s = json_string_value(json_object_get(mp, "op"))) && ptc_op_from_name(s, strlen(s)) >= 0 &&
                json_is_true(json_object_get(entry, "valid")))
                seen_op[ptc_op_from_name(s, strlen(s))] = true;
            if ((s = json_string_value(json_object_get(fr, "reply_to"))) && ptc_op_from_name(s, strlen(s)) >= 0 &&
                json_is_true(json_object_get(mp, "ok")))
                seen_reply[ptc_op_from_name(s, strlen(s))] = true;
            if ((s = json_string_value(json_object_get(mp, "error"))) && ptc_code_from_name(s, strlen(s)) >= 0)
                seen_code[ptc_code_from_name(s, strlen(s))] = true;
            if (json_integer_value(json_object_get(fr, "code")) == PTC_STATE &&
                (s = json_string_value(json_object_get(mp, "state"))) && ptc_state_from_name(s, strlen(s)) >= 0)
                seen_state[ptc_state_from_name(s, strlen(s))] = true;
        }
    }

    /* Coverage promised by proto/fixtures/README.md. */
    for (int t = PTC_OUTPUT; t <= PTC_EVENT; t++)
        cr_expect(seen_type[t], "no fixture has a frame of type %s", ptc_type_name((uint8_t)t));
    cr_expect(seen_type[0x40], "no fixture has an extension frame");
    for (int op = 0; op < PTC_OP__COUNT; op++) {
        cr_expect(seen_op[op], "no REQUEST fixture for op %s", ptc_op_name(op));
        cr_expect(seen_reply[op], "no successful REPLY fixture for op %s", ptc_op_name(op));
    }
    for (int c = 0; c < PTC_C__COUNT; c++)
        cr_expect(seen_code[c], "no failed REPLY fixture with error %s", ptc_code_name(c));
    for (int s = 0; s < PTC_ST__COUNT; s++)
        cr_expect(seen_state[s], "no STATE fixture for state %s", ptc_state_name(s));
    cr_expect_geq(invalid, 10, "only %d invalid cases", invalid);

    /* Every .bin in the folder is a case, and every case has its .bin. */
    d = opendir(FIXTURES_DIR);
    cr_assert_not_null(d);
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        bool listed = false;

        if (n < 4 || strcmp(de->d_name + n - 4, ".bin") != 0)
            continue;
        files++;
        json_array_foreach(cases, i, entry) {
            if (!strcmp(json_string_value(json_object_get(entry, "file")), de->d_name))
                listed = true;
        }
        cr_expect(listed, "%s is not in manifest.json", de->d_name);
    }
    closedir(d);
    cr_expect_eq(files, json_array_size(cases), "%zu .bin files for %zu cases", files, json_array_size(cases));
    json_decref(m);
}

Test(fixtures, bin_matches_hex)
{
    json_t *m = load_manifest(), *entry;
    size_t i;

    json_array_foreach(json_object_get(m, "cases"), i, entry) {
        struct ptc_buf bin;
        char *hex;

        ptc_buf_init(&bin, 0);
        cr_assert(read_bin(FIXTURES_DIR, json_string_value(json_object_get(entry, "file")), &bin), "%s: no .bin",
                  case_name(entry));
        hex = fixjson_hex(bin.data, bin.len);
        cr_expect_str_eq(hex, json_string_value(json_object_get(entry, "hex")), "%s", case_name(entry));
        cr_expect_eq((json_int_t)bin.len, json_integer_value(json_object_get(entry, "size")), "%s",
                     case_name(entry));
        free(hex);
        ptc_buf_free(&bin);
    }
    json_decref(m);
}

/* Decodes bin with ptc_frame_decode and checks the frames and the rest against the entry. */
static void check_decode(const json_t *entry, const struct ptc_buf *bin)
{
    const char *name = case_name(entry);
    json_t *frames = json_object_get(entry, "frames"), *rest = json_object_get(entry, "rest");
    size_t pos = 0, i = 0;

    while (pos < bin->len) {
        struct ptc_frame f;
        long r = ptc_frame_decode(bin->data + pos, bin->len - pos, PTC_MAX_FRAME_DEFAULT, &f);
        json_t *got, *want;

        if (r < 0)
            break;
        cr_assert_lt(i, json_array_size(frames), "%s: more frames decode than the manifest lists", name);
        got = fixjson_frame(&f, pos);
        want = wire_part(json_array_get(frames, i));
        expect_json_eq(got, want, "frame", name, i);
        json_decref(got);
        json_decref(want);
        pos += (size_t)r;
        i++;
    }
    cr_expect_eq(i, json_array_size(frames), "%s: %zu frames decode, the manifest lists %zu", name, i,
                 json_array_size(frames));
    if (pos == bin->len) {
        cr_expect_null(rest, "%s: the manifest has a rest, the bytes have none", name);
        return;
    }
    cr_assert_not_null(rest, "%s: %zu bytes after the last frame, not in the manifest", name, bin->len - pos);
    {
        char *hex = fixjson_hex(bin->data + pos, bin->len - pos);

        cr_expect_str_eq(hex, json_string_value(rest), "%s: rest", name);
        free(hex);
    }
    if (bin->len - pos >= PTC_HDR_LEN) {
        json_t *got = fixjson_header(bin->data + pos);

        expect_json_eq(got, json_object_get(entry, "rest_header"), "rest header", name, 0);
        json_decref(got);
    } else {
        cr_expect_null(json_object_get(entry, "rest_header"), "%s", name);
    }
}

/* Decodes bin with ptc_stream, fed in pieces of `step` bytes, and compares with ptc_frame_decode. */
static void check_stream(const json_t *entry, const struct ptc_buf *bin, size_t step)
{
    const char *name = case_name(entry);
    json_t *frames = json_object_get(entry, "frames"), *error = json_object_get(entry, "error");
    const char *want_err = json_string_value(json_object_get(error, "ptc"));
    const char *stage = json_string_value(json_object_get(error, "stage"));
    bool stream_error = stage && !strcmp(stage, "stream") && strcmp(want_err, "PTC_EAGAIN") != 0;
    struct ptc_stream s;
    size_t pos = 0, i = 0, at = 0;
    int err = 0;

    ptc_stream_init(&s, PTC_MAX_FRAME_DEFAULT);
    while (pos < bin->len && err == 0) {
        size_t n = bin->len - pos < step ? bin->len - pos : step;
        struct ptc_frame f;
        int rc;

        /* After a failed feed, next still hands out the frames before the bad header, then the error. */
        err = ptc_stream_feed(&s, bin->data + pos, n);
        pos += n;
        while ((rc = ptc_stream_next(&s, &f)) != 0) {
            json_t *got, *want;

            if (rc < 0) {
                cr_expect_eq(rc, err, "%s: next's error differs from feed's (step %zu)", name, step);
                err = rc;
                break;
            }
            cr_assert_lt(i, json_array_size(frames), "%s: stream gives more frames than listed (step %zu)", name, step);
            got = fixjson_frame(&f, at);
            want = wire_part(json_array_get(frames, i));
            expect_json_eq(got, want, "stream frame", name, i);
            json_decref(got);
            json_decref(want);
            at += PTC_HDR_LEN + f.len;
            i++;
        }
    }
    cr_expect_eq(i, json_array_size(frames), "%s: stream gives %zu frames, manifest %zu (step %zu)", name, i,
                 json_array_size(frames), step);
    if (stream_error) {
        cr_expect_str_eq(fixjson_err_name(err), want_err, "%s: stream error (step %zu)", name, step);
    } else {
        cr_expect_eq(err, 0, "%s: stream error %s (step %zu)", name, fixjson_err_name(err), step);
        cr_expect_eq(ptc_stream_pending(&s), bin->len - at, "%s: pending bytes (step %zu)", name, step);
    }
    ptc_stream_free(&s);
}

Test(fixtures, every_bin_decodes_to_its_manifest_entry)
{
    json_t *m = load_manifest(), *entry;
    size_t i;

    json_array_foreach(json_object_get(m, "cases"), i, entry) {
        struct ptc_buf bin;

        ptc_buf_init(&bin, 0);
        cr_assert(read_bin(FIXTURES_DIR, json_string_value(json_object_get(entry, "file")), &bin));
        check_decode(entry, &bin);
        check_stream(entry, &bin, bin.len ? bin.len : 1);
        check_stream(entry, &bin, 1);
        check_stream(entry, &bin, 7);
        ptc_buf_free(&bin);
    }
    json_decref(m);
}

Test(fixtures, every_manifest_entry_encodes_to_its_bin)
{
    json_t *m = load_manifest(), *entry, *fr;
    size_t i, k;

    json_array_foreach(json_object_get(m, "cases"), i, entry) {
        const char *name = case_name(entry), *rest = json_string_value(json_object_get(entry, "rest"));
        struct ptc_buf bin, enc;
        char why[256];

        ptc_buf_init(&bin, 0);
        ptc_buf_init(&enc, 0);
        cr_assert(read_bin(FIXTURES_DIR, json_string_value(json_object_get(entry, "file")), &bin));
        json_array_foreach(json_object_get(entry, "frames"), k, fr) {
            size_t before = enc.len;

            cr_expect_eq(fixjson_frame_encode(fr, &enc, why, sizeof why), 0, "%s: frame %zu: %s", name, k, why);
            cr_expect_eq(json_integer_value(json_object_get(fr, "at")), (json_int_t)before, "%s: frame %zu at",
                         name, k);
            cr_expect_eq(json_integer_value(json_object_get(fr, "size")), (json_int_t)(enc.len - before),
                         "%s: frame %zu size", name, k);
        }
        if (rest) {
            json_t *h = json_object_get(entry, "rest_header");

            if (h) { /* the described header must be the rest's first 21 bytes */
                uint8_t hdr[PTC_HDR_LEN];
                ptc_uuid u;
                const char *sess = json_string_value(json_object_get(h, "session"));
                char *hex;

                cr_assert_eq(ptc_uuid_parse(sess, strlen(sess), &u), 0, "%s", name);
                ptc_header_encode(hdr, (uint8_t)json_integer_value(json_object_get(h, "code")), &u,
                                  (uint32_t)json_integer_value(json_object_get(h, "length")));
                hex = fixjson_hex(hdr, sizeof hdr);
                cr_expect(!strncmp(rest, hex, 2 * PTC_HDR_LEN), "%s: rest_header does not encode to the rest", name);
                free(hex);
            }
            cr_expect_eq(fixjson_unhex(rest, &enc), 0, "%s", name);
        }
        cr_expect_eq(enc.len, bin.len, "%s: encodes to %zu bytes, the .bin has %zu", name, enc.len, bin.len);
        if (enc.len == bin.len)
            cr_expect(!memcmp(enc.data, bin.data, bin.len), "%s: encodes to different bytes", name);
        ptc_buf_free(&enc);
        ptc_buf_free(&bin);
    }
    json_decref(m);
}

Test(fixtures, every_case_gets_its_stated_verdict)
{
    json_t *m = load_manifest(), *entry;
    size_t i;

    json_array_foreach(json_object_get(m, "cases"), i, entry) {
        const char *name = case_name(entry);
        json_t *error = json_object_get(entry, "error"), *verdict;
        struct ptc_buf bin;
        size_t pending;

        ptc_buf_init(&bin, 0);
        cr_assert(read_bin(FIXTURES_DIR, json_string_value(json_object_get(entry, "file")), &bin));
        verdict = fixjson_verdict(bin.data, bin.len, json_object_get(entry, "frames"), &pending);
        if (json_is_true(json_object_get(entry, "header_only"))) {
            cr_expect(json_is_true(json_object_get(entry, "valid")), "%s", name);
            cr_expect_eq(pending, PTC_HDR_LEN, "%s: a header alone needs more bytes", name);
        } else if (json_is_true(json_object_get(entry, "valid"))) {
            cr_expect_null(error, "%s: valid with an error", name);
            cr_expect_null(verdict, "%s: a valid case is refused", name);
        } else {
            cr_assert_not_null(error, "%s: invalid without an error", name);
            cr_expect(json_object_get(error, "close") || json_object_get(error, "reply"), "%s", name);
            expect_json_eq(verdict, error, "verdict", name, 0);
        }
        json_decref(verdict);
        ptc_buf_free(&bin);
    }
    json_decref(m);
}

/* The stated error codes map to the close codes and replies PTC1 requires. */
Test(fixtures, invalid_cases_carry_the_protocol_outcome)
{
    json_t *m = load_manifest(), *entry;
    size_t i;
    int n = 0;

    json_array_foreach(json_object_get(m, "cases"), i, entry) {
        json_t *e = json_object_get(entry, "error");
        const char *ptc = json_string_value(json_object_get(e, "ptc"));
        json_int_t close = json_integer_value(json_object_get(e, "close"));

        if (!e)
            continue;
        n++;
        if (!strcmp(ptc, "PTC_ETOOBIG"))
            cr_expect_eq(close, 4413, "%s", case_name(entry));
        else if (!strcmp(ptc, "PTC_ECORE") || !strcmp(ptc, "PTC_EPROTO") || !strcmp(ptc, "PTC_EPAYLOAD") ||
                 !strcmp(ptc, "PTC_EAGAIN"))
            cr_expect_eq(close, 4400, "%s", case_name(entry));
        else
            cr_expect_str_eq(json_string_value(json_object_get(json_object_get(e, "reply"), "error")),
                             "bad_request", "%s", case_name(entry));
    }
    cr_expect_gt(n, 0);
    json_decref(m);
}

/* The largest frame's header is accepted by a relay with the default max_frame, and one byte less refuses it. */
Test(fixtures, max_frame_header_is_at_the_limit)
{
    struct ptc_buf bin;
    struct ptc_frame f;

    ptc_buf_init(&bin, 0);
    cr_assert(read_bin(FIXTURES_DIR, "max_frame_header.bin", &bin));
    cr_assert_eq(bin.len, PTC_HDR_LEN);
    cr_expect_eq(ptc_frame_decode(bin.data, bin.len, PTC_MAX_FRAME_DEFAULT, &f), PTC_EAGAIN);
    cr_expect_eq(ptc_frame_decode(bin.data, bin.len, PTC_MAX_FRAME_DEFAULT - 1, &f), PTC_ETOOBIG);
    cr_expect_eq(bin.data[17] | bin.data[18] << 8 | bin.data[19] << 16 | (uint32_t)bin.data[20] << 24,
                 PTC_MAX_FRAME_DEFAULT);
    ptc_buf_free(&bin);
}

/* The committed files are exactly what the generator writes now. */
Test(fixtures, committed_files_equal_the_generator_output)
{
    char dir[] = "/tmp/ptc-fixtures-XXXXXX";
    json_t *m = load_manifest(), *fresh, *entry;
    struct ptc_buf a, b;
    size_t i;

    cr_assert_not_null(mkdtemp(dir));
    fresh = fixtures_generate(dir);
    cr_expect_eq(json_array_size(json_object_get(fresh, "cases")), json_array_size(json_object_get(m, "cases")));

    ptc_buf_init(&a, 0);
    ptc_buf_init(&b, 0);
    cr_assert(read_bin(dir, "manifest.json", &a));
    cr_assert(read_bin(FIXTURES_DIR, "manifest.json", &b));
    cr_expect(a.len == b.len && !memcmp(a.data, b.data, a.len),
              "manifest.json differs from the generator's: run ptc-fixtures proto/fixtures");
    json_array_foreach(json_object_get(fresh, "cases"), i, entry) {
        const char *file = json_string_value(json_object_get(entry, "file"));
        char path[4096];

        ptc_buf_reset(&a);
        ptc_buf_reset(&b);
        cr_assert(read_bin(dir, file, &a));
        cr_expect(read_bin(FIXTURES_DIR, file, &b), "%s is not committed", file);
        cr_expect(a.len == b.len && !memcmp(a.data, b.data, a.len), "%s differs from the generator's", file);
        snprintf(path, sizeof path, "%s/%s", dir, file);
        unlink(path);
    }
    {
        char path[4096];

        snprintf(path, sizeof path, "%s/manifest.json", dir);
        unlink(path);
    }
    cr_expect_eq(rmdir(dir), 0, "the generator wrote files that are not cases");
    ptc_buf_free(&a);
    ptc_buf_free(&b);
    json_decref(fresh);
    json_decref(m);
}

/* The worked examples in docs/protocol.md are the current rendering of the fixtures. */
Test(fixtures, docs_examples_match_the_fixtures)
{
    json_t *m = load_manifest();
    char *docs = read_text(DOCS), *block, *b, *e;

    cr_assert_not_null(docs, "cannot read %s", DOCS);
    b = strstr(docs, DOCS_BEGIN);
    cr_assert_not_null(b, "no examples block in docs/protocol.md");
    b += strlen(DOCS_BEGIN);
    e = strstr(b, DOCS_END);
    cr_assert_not_null(e);
    block = fixtures_docs(m);
    cr_expect(strlen(block) == (size_t)(e - b) && !strncmp(block, b, (size_t)(e - b)),
              "docs/protocol.md examples are stale: run ptc-fixtures proto/fixtures --docs docs/protocol.md");
    free(block);
    free(docs);
    json_decref(m);
}

/* Spot checks against values written by hand from docs/protocol.md, independent of the generator. */
Test(fixtures, hand_checked_bytes)
{
    static const uint8_t output_hdr[] = {0x01, 0x1b, 0x4e, 0x28, 0xba, 0x2f, 0xa1, 0x41, 0xd2, 0x88, 0x3f, 0x00,
                                         0x16, 0xd3, 0xcc, 0xa4, 0x27, 0x0f, 0x00, 0x00, 0x00};
    static const uint8_t output_payload[] = {0, 0, 0, 0, 0, 0, 0, 0, 'h', 'e', 'l', 'l', 'o', '\r', '\n'};
    static const uint8_t resize[] = {0x78, 0x00, 0x28, 0x00};                /* 120 x 40 */
    static const uint8_t big_offset[] = {0x00, 0xf2, 0x05, 0x2a, 0x01, 0, 0, 0}; /* 5000000000 */
    struct ptc_buf bin;

    ptc_buf_init(&bin, 0);
    cr_assert(read_bin(FIXTURES_DIR, "output.bin", &bin));
    cr_assert_eq(bin.len, sizeof output_hdr + sizeof output_payload);
    cr_expect(!memcmp(bin.data, output_hdr, sizeof output_hdr));
    cr_expect(!memcmp(bin.data + PTC_HDR_LEN, output_payload, sizeof output_payload));

    ptc_buf_reset(&bin);
    cr_assert(read_bin(FIXTURES_DIR, "resize_client.bin", &bin));
    cr_assert_eq(bin.len, PTC_HDR_LEN + 4);
    cr_expect_eq(bin.data[0], 0x02);
    cr_expect(!memcmp(bin.data + PTC_HDR_LEN, resize, 4));

    ptc_buf_reset(&bin);
    cr_assert(read_bin(FIXTURES_DIR, "output_large_offset.bin", &bin));
    cr_expect(!memcmp(bin.data + PTC_HDR_LEN, big_offset, 8));

    ptc_buf_reset(&bin);
    cr_assert(read_bin(FIXTURES_DIR, "subscribe_request.bin", &bin));
    /* {"id": 14, "op": "subscribe"}: fixmap 2, fixstr "id", 14, fixstr "op", fixstr "subscribe" */
    cr_assert_eq(bin.len, PTC_HDR_LEN + 18);
    cr_expect_eq(bin.data[0], PTC_REQUEST);
    cr_expect_eq(bin.data[17], 18);
    cr_expect(!memcmp(bin.data + PTC_HDR_LEN, "\x82\xa2id\x0e\xa2op\xa9subscribe", 18));
    ptc_buf_free(&bin);
}
