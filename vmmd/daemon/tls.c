/*
 * The TCP listener's TLS material (see tls.h). Without --tls-cert the daemon
 * makes its own pair on first start, as it makes its token: an ECDSA P-256
 * key (mode 0600) and a self-signed certificate valid for ten years, whose
 * subjectAltName holds the --listen host, localhost, 127.0.0.1 and ::1, so
 * that `curl --cacert <state-dir>/tls-cert.pem` verifies it by name. Clients
 * that cannot be given the file check the SHA-256 fingerprint the daemon
 * logs and reports in GET /v1/host, or pin its public key (curl's
 * --pinnedpubkey, vmctl --tls-pin), which survives a renewed certificate.
 */
#include "tls.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SELF_SIGNED_DAYS 3650

/* The whole of a small file, NUL-terminated; NULL with errno set. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (!f)
        return NULL;
    do {
        if (cap - len < 4096) {
            char *grown = realloc(buf, cap + 65536);
            if (!grown) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = grown;
            cap += 65536;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0 && len < 1024 * 1024);
    fclose(f);
    buf[len] = 0;
    return buf;
}

static int write_file(const char *path, const gnutls_datum_t *data, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = write(fd, data->data, data->size);
    if (fsync(fd) < 0 || n != (ssize_t)data->size) {
        int e = n < 0 ? errno : EIO;
        close(fd);
        unlink(path);
        return -e;
    }
    close(fd);
    return 0;
}

/* The host part of HOST:PORT or [V6]:PORT, for the certificate's subjectAltName. */
static void listen_host(const char *hostport, char *host, size_t len)
{
    const char *colon = hostport ? strrchr(hostport, ':') : NULL;

    host[0] = 0;
    if (!colon)
        return;
    snprintf(host, len, "%.*s", (int)(colon - hostport), hostport);
    if (host[0] == '[') {
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = 0;
    }
}

static int add_san(gnutls_x509_crt_t crt, const char *name)
{
    unsigned char ip[16];

    if (inet_pton(AF_INET, name, ip) == 1)
        return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 4,
                                                    GNUTLS_FSAN_APPEND);
    if (inet_pton(AF_INET6, name, ip) == 1)
        return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 16,
                                                    GNUTLS_FSAN_APPEND);
    return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, name,
                                                (unsigned)strlen(name), GNUTLS_FSAN_APPEND);
}

/* The names the self-signed certificate is valid for. */
static int add_sans(gnutls_x509_crt_t crt, const char *listen)
{
    char host[256], hostname[256];
    int rc = 0;

    listen_host(listen, host, sizeof(host));
    /* A wildcard address names no host: the machine's name stands in for it. */
    if (!host[0] || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0) {
        host[0] = 0;
        if (gethostname(hostname, sizeof(hostname)) == 0) {
            hostname[sizeof(hostname) - 1] = 0;
            snprintf(host, sizeof(host), "%s", hostname);
        }
    }
    if (host[0] && strcmp(host, "localhost") != 0 && strcmp(host, "127.0.0.1") != 0 &&
        strcmp(host, "::1") != 0)
        rc = add_san(crt, host);
    if (rc >= 0)
        rc = add_san(crt, "localhost");
    if (rc >= 0)
        rc = add_san(crt, "127.0.0.1");
    if (rc >= 0)
        rc = add_san(crt, "::1");
    return rc;
}

static int generate_self_signed(const struct vmmd_config *cfg, char *err, size_t errlen)
{
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t key_pem = {0}, crt_pem = {0};
    unsigned char serial[16], key_id[64];
    size_t key_id_len = sizeof(key_id);
    time_t now = time(NULL);
    int rc;

    if (getrandom(serial, sizeof(serial), 0) != sizeof(serial)) {
        snprintf(err, errlen, "TLS: no random bytes for a certificate serial");
        return -EIO;
    }
    serial[0] &= 0x7f; /* a positive INTEGER (RFC 5280 4.1.2.2) */
    if ((rc = gnutls_x509_privkey_init(&key)) < 0 ||
        (rc = gnutls_x509_privkey_generate(
             key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0)) < 0 ||
        (rc = gnutls_x509_crt_init(&crt)) < 0 || (rc = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
        (rc = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) < 0 ||
        (rc = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
        (rc = gnutls_x509_crt_set_expiration_time(crt, now + SELF_SIGNED_DAYS * 86400L)) < 0 ||
        (rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "vmmd", 4)) < 0 ||
        (rc = gnutls_x509_crt_set_key(crt, key)) < 0 ||
        (rc = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
        (rc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
        (rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0 ||
        (rc = add_sans(crt, cfg->listen)) < 0 ||
        (rc = gnutls_x509_crt_get_key_id(crt, 0, key_id, &key_id_len)) < 0 ||
        (rc = gnutls_x509_crt_set_subject_key_id(crt, key_id, key_id_len)) < 0 ||
        (rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0)) < 0 ||
        (rc = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &key_pem)) < 0 ||
        (rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &crt_pem)) < 0) {
        snprintf(err, errlen, "TLS: creating a self-signed certificate: %s", gnutls_strerror(rc));
        rc = -EIO;
        goto out;
    }
    /* The key first: a certificate without its key would stop every later start. */
    if ((rc = write_file(cfg->tls_key, &key_pem, 0600))) {
        snprintf(err, errlen, "TLS key %.300s: %s", cfg->tls_key, strerror(-rc));
        goto out;
    }
    if ((rc = write_file(cfg->tls_cert, &crt_pem, 0644))) {
        snprintf(err, errlen, "TLS certificate %.300s: %s", cfg->tls_cert, strerror(-rc));
        unlink(cfg->tls_key);
        goto out;
    }
    log_info("created a self-signed TLS certificate in %s (key in %s)", cfg->tls_cert,
             cfg->tls_key);
out:
    gnutls_free(key_pem.data);
    gnutls_free(crt_pem.data);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    if (key)
        gnutls_x509_privkey_deinit(key);
    return rc;
}

/* The SHA-256 fingerprint (AB:CD:...) and public-key pin of the first certificate in pem. */
static int describe_cert(struct vmmd_tls *tls, const char *listen, char *err, size_t errlen)
{
    gnutls_x509_crt_t crt;
    gnutls_datum_t pem = {(unsigned char *)tls->cert_pem, (unsigned)strlen(tls->cert_pem)};
    gnutls_datum_t id = {0}, b64 = {0};
    unsigned char fp[32], key_id[32];
    size_t fp_len = sizeof(fp), key_id_len = sizeof(key_id);
    char host[256];
    int rc;

    if ((rc = gnutls_x509_crt_init(&crt)) < 0)
        goto fail;
    if ((rc = gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM)) < 0 ||
        (rc = gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &fp_len)) < 0 ||
        (rc = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, key_id, &key_id_len)) < 0) {
        gnutls_x509_crt_deinit(crt);
        goto fail;
    }
    for (size_t i = 0; i < fp_len; i++)
        snprintf(tls->fingerprint + 3 * i, 4, "%02X%s", fp[i], i + 1 < fp_len ? ":" : "");
    id.data = key_id;
    id.size = (unsigned)key_id_len;
    if (gnutls_base64_encode2(&id, &b64) == 0) {
        snprintf(tls->pin, sizeof(tls->pin), "sha256//%.*s", (int)b64.size, b64.data);
        gnutls_free(b64.data);
    }
    listen_host(listen, host, sizeof(host));
    if (host[0] && strcmp(host, "0.0.0.0") != 0 && strcmp(host, "::") != 0 &&
        !gnutls_x509_crt_check_hostname(crt, host))
        log_warn("the TLS certificate %s does not name the --listen host %s: clients that "
                 "verify the name will refuse it",
                 tls->cert_path, host);
    if (gnutls_x509_crt_get_expiration_time(crt) < time(NULL))
        log_warn("the TLS certificate %s has expired", tls->cert_path);
    gnutls_x509_crt_deinit(crt);
    return 0;
fail:
    snprintf(err, errlen, "TLS certificate %.300s: %s", tls->cert_path, gnutls_strerror(rc));
    return -EINVAL;
}

static int load(const char *what, const char *path, char **out, char *err, size_t errlen)
{
    *out = read_file(path);
    if (!*out) {
        snprintf(err, errlen, "%s %.300s: %s", what, path, strerror(errno));
        return -errno;
    }
    return 0;
}

int vmmd_tls_load(const struct vmmd_config *cfg, struct vmmd_tls *tls, char *err, size_t errlen)
{
    struct stat st;
    bool have_cert, have_key;
    int rc;

    memset(tls, 0, sizeof(*tls));
    tls->cert_path = cfg->tls_cert;
    if (cfg->tls_self_signed) {
        have_cert = stat(cfg->tls_cert, &st) == 0;
        have_key = stat(cfg->tls_key, &st) == 0;
        if (have_cert != have_key) {
            snprintf(err, errlen,
                     "TLS: %.300s exists without %.300s: remove it to have a new "
                     "self-signed pair made",
                     have_cert ? cfg->tls_cert : cfg->tls_key,
                     have_cert ? cfg->tls_key : cfg->tls_cert);
            return -EINVAL;
        }
        if (!have_cert && (rc = generate_self_signed(cfg, err, errlen)))
            return rc;
    }
    if ((rc = load("TLS certificate", cfg->tls_cert, &tls->cert_pem, err, errlen)) ||
        (rc = load("TLS key", cfg->tls_key, &tls->key_pem, err, errlen)))
        goto err_free;
    if (cfg->tls_client_ca) {
        gnutls_x509_crt_t *cas = NULL;
        unsigned n = 0;
        gnutls_datum_t pem;

        if ((rc = load("TLS client CA", cfg->tls_client_ca, &tls->client_ca_pem, err, errlen)))
            goto err_free;
        pem.data = (unsigned char *)tls->client_ca_pem;
        pem.size = (unsigned)strlen(tls->client_ca_pem);
        rc = gnutls_x509_crt_list_import2(&cas, &n, &pem, GNUTLS_X509_FMT_PEM, 0);
        for (unsigned i = 0; i < n; i++)
            gnutls_x509_crt_deinit(cas[i]);
        gnutls_free(cas);
        if (rc < 0 || n == 0) {
            snprintf(err, errlen, "TLS client CA %.300s: %s", cfg->tls_client_ca,
                     rc < 0 ? gnutls_strerror(rc) : "no certificate in it");
            rc = -EINVAL;
            goto err_free;
        }
    }
    if ((rc = describe_cert(tls, cfg->listen, err, errlen)))
        goto err_free;
    return 0;

err_free:
    vmmd_tls_free(tls);
    return rc;
}

void vmmd_tls_free(struct vmmd_tls *tls)
{
    /* The key's bytes do not linger in freed memory. */
    if (tls->key_pem)
        explicit_bzero(tls->key_pem, strlen(tls->key_pem));
    free(tls->key_pem);
    free(tls->cert_pem);
    free(tls->client_ca_pem);
    memset(tls, 0, sizeof(*tls));
}

bool vmmd_tls_client_cert_ok(void *session)
{
    gnutls_session_t s = session;
    unsigned status = 0;

    if (!s || gnutls_certificate_type_get(s) != GNUTLS_CRT_X509)
        return false;
    /* No certificate at all is an error here, not a status of 0. */
    return gnutls_certificate_verify_peers2(s, &status) == 0 && status == 0;
}
