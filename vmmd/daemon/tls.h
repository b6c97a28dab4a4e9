/*
 * TLS for the TCP listener: the certificate and key from the config, or a
 * self-signed pair made on first start in the state directory; the
 * certificate's SHA-256 fingerprint and public-key pin for the log and
 * GET /v1/host; and the check of a client certificate against --tls-client-ca.
 */
#ifndef VMMD_TLS_H
#define VMMD_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct vmmd_tls {
    const char *cert_path;
    char *cert_pem, *key_pem; /* for MHD_OPTION_HTTPS_MEM_CERT / _KEY */
    char *client_ca_pem;      /* MHD_OPTION_HTTPS_MEM_TRUST; NULL: no client certificates */
    char fingerprint[32 * 3]; /* SHA-256 of the certificate (DER), "AB:CD:..." */
    char pin[64];             /* "sha256//<base64>" of its public key, as curl pins it */
};

/* Loads (or, for the default paths, first creates) the pair; 0 or a negative errno and err. */
int vmmd_tls_load(const struct vmmd_config *cfg, struct vmmd_tls *tls, char *err, size_t errlen);
void vmmd_tls_free(struct vmmd_tls *tls);

/* True when the GnuTLS session's peer sent a certificate that verifies against the client CA. */
bool vmmd_tls_client_cert_ok(void *session);

#endif
