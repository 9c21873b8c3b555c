/*
 * Unit tests of relay/config.c: defaults, every numeric flag's range, unknown flags and stray
 * arguments refused with a message naming them.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "relay.h"

static int parse(struct config *c, char *err, size_t errlen, const char *const *args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "serve";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    return config_parse_serve(c, argc, argv, err, errlen);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

Test(config, defaults)
{
    struct config c;
    config_defaults(&c);
    cr_assert_str_eq(c.listen, "127.0.0.1:7373");
    cr_assert_eq(c.stall_timeout_s, 30);
    cr_assert_eq(c.ring_max, 4u << 20);
    cr_assert_eq(c.idle_after_ms, 30000);
    cr_assert_eq(c.attention_after_ms, 120000);
    cr_assert_eq(c.max_frame, PTC_MAX_FRAME_DEFAULT);
    cr_assert_eq(c.log_max, 64u << 20);
    cr_assert(strstr(c.data_dir, "ptyrelay") != NULL || strcmp(c.data_dir, "./var") == 0);
    config_free(&c);
}

Test(config, flags_set_values)
{
    struct config c;
    char err[256];
    config_defaults(&c);
    cr_assert_eq(parse(&c, err, sizeof err,
                       ARGS("--listen", "unix:/tmp/x.sock", "--data", "/tmp/d", "--stall-timeout",
                            "5", "--ring-max", "8192", "--max-sessions", "10", "--idle-after",
                            "300", "--attention-after", "600", "--log-level", "debug",
                            "--log-max", "0", "--no-log")),
                 0, "%s", err);
    cr_assert_str_eq(c.listen, "unix:/tmp/x.sock");
    cr_assert_str_eq(c.data_dir, "/tmp/d");
    cr_assert_eq(c.stall_timeout_s, 5);
    cr_assert_eq(c.ring_max, 8192);
    cr_assert_eq(c.max_sessions, 10);
    cr_assert_eq(c.idle_after_ms, 300);
    cr_assert_eq(c.attention_after_ms, 600);
    cr_assert_eq(c.log_level, LOG_DEBUG);
    cr_assert_eq(c.log_max, 0);
    cr_assert(c.no_log);
    config_free(&c);
}

Test(config, bad_values_are_refused_with_the_flag_named)
{
    const char *const *bad[] = {
        ARGS("--stall-timeout", "0"),     ARGS("--stall-timeout", "-1"),
        ARGS("--ring-max", "100"),        ARGS("--max-sessions", "x"),
        ARGS("--log-level", "loud"),      ARGS("--max-frame", "10"),
        ARGS("--idle-after", "5000", "--attention-after", "10"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct config c;
        char err[256] = "";
        config_defaults(&c);
        cr_assert_eq(parse(&c, err, sizeof err, bad[i]), -1, "case %zu accepted", i);
        cr_assert(strstr(err, "--") != NULL, "case %zu: message names the flag: %s", i, err);
        config_free(&c);
    }
}

Test(config, unknown_flags_and_stray_arguments)
{
    struct config c;
    char err[256];
    config_defaults(&c);
    cr_assert_eq(parse(&c, err, sizeof err, ARGS("--bogus")), -1);
    cr_assert(strstr(err, "--bogus") != NULL, "%s", err);
    config_free(&c);
    config_defaults(&c);
    cr_assert_eq(parse(&c, err, sizeof err, ARGS("extra")), -1);
    cr_assert(strstr(err, "extra") != NULL, "%s", err);
    config_free(&c);
}
