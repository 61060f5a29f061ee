// The C half of the tenant-checked credential API (the SQL half, with the tenant and type
// checks, is sql/install/30_credentials.sql): every secret column is sealed here, in C, with
// associated data binding it to (user_id, instance_id, field), before any row holds it.
#include "core/envelope.hpp"
#include "core/errors.hpp"
#include "core/secure_buffer.hpp"
#include "pg/boundary.hpp"
#include "pg/crypto.hpp"
#include "pg/keyring_source.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstring>
#include <string>

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "funcapi.h"
#include "access/htup_details.h"
#include "utils/builtins.h"
#include "utils/uuid.h"
}

namespace mp = mcp_platform;

namespace {

// The secret fields and the names bound into their associated data.
bool KnownField(const std::string& field) {
    return field == "api_key" || field == "client_secret" || field == "access_token" ||
           field == "refresh_token" || field == "code_verifier";
}

// Arguments 0..2 (user_id, instance_id, field), fetched before any C++ object exists.
struct FieldArgs {
    const pg_uuid_t* user_id;
    const pg_uuid_t* instance_id;
    const text* field;
};

FieldArgs GetFieldArgs(FunctionCallInfo fcinfo) {
    return FieldArgs{PG_GETARG_UUID_P(0), PG_GETARG_UUID_P(1), PG_GETARG_TEXT_PP(2)};
}

// Associated data for (user_id, instance_id, field): see CredentialContext.
std::string FieldContext(const FieldArgs& args) {
    std::string field(VARDATA_ANY(args.field), VARSIZE_ANY_EXHDR(args.field));
    if (!KnownField(field))
        throw mp::SqlError(mp::sqlstate::kInvalidParameter,
                           "unknown credential field \"" + field + "\"");
    return mp::CredentialContext(args.user_id->data, args.instance_id->data, field);
}

void Base64Url(const uint8_t* in, size_t n, char* out) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = uint32_t(in[i]) << 16 | uint32_t(in[i + 1]) << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = uint32_t(in[i]) << 16;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = uint32_t(in[i]) << 16 | uint32_t(in[i + 1]) << 8;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
    }
    out[o] = '\0';
}

}  // namespace

// mcp.credential_context(user_id uuid, instance_id uuid, field text) → bytea: the associated
// data a credential field is sealed with (for mcp.decrypt and offline decryption).
MCP_PG_FUNCTION(mcp_credential_context) {
    FieldArgs args = GetFieldArgs(fcinfo);
    std::string context = FieldContext(args);
    const std::string* c = &context;
    bytea* out = static_cast<bytea*>(mp::PgGuard([&]() { return palloc(VARHDRSZ + c->size()); }));
    std::memcpy(VARDATA(out), context.data(), context.size());
    SET_VARSIZE(out, VARHDRSZ + context.size());
    PG_RETURN_BYTEA_P(out);
}

Datum mp::SealCredentialField(const pg_uuid_t* user, const pg_uuid_t* instance, const char* field,
                              text* secret, bool wipe, int32* key_version) {
    return mp::InvokeCpp([&]() -> Datum {
        mp::ScopedCleanse wipe_secret(wipe ? VARDATA_ANY(secret) : nullptr,
                                      wipe ? VARSIZE_ANY_EXHDR(secret) : 0);
        std::string context = mp::CredentialContext(user->data, instance->data, field);
        bytea* sealed = mp::SealToBytea(mp::AsBytes(context), mp::VarBytes(secret));
        if (key_version != nullptr)
            *key_version = static_cast<int32>(mp::EnvelopeKeyVersion(mp::VarBytes(sealed)));
        return PointerGetDatum(sealed);
    });
}

// mcp._seal_field(user_id uuid, instance_id uuid, field text, secret text) → bytea
MCP_PG_FUNCTION(mcp_seal_field) {
    FieldArgs args = GetFieldArgs(fcinfo);
    text* secret = PG_GETARG_TEXT_PP(3);
    // A detoasted copy of the secret is ours to wipe; the caller's own datum is not.
    bool copied = reinterpret_cast<Pointer>(secret) != DatumGetPointer(PG_GETARG_DATUM(3));
    mp::ScopedCleanse wipe(copied ? VARDATA_ANY(secret) : nullptr,
                           copied ? VARSIZE_ANY_EXHDR(secret) : 0);
    std::string context = FieldContext(args);
    PG_RETURN_BYTEA_P(mp::SealToBytea(mp::AsBytes(context), mp::VarBytes(secret)));
}

// mcp._open_field(user_id uuid, instance_id uuid, field text, ciphertext bytea) → text
MCP_PG_FUNCTION(mcp_open_field) {
    FieldArgs args = GetFieldArgs(fcinfo);
    bytea* envelope = PG_GETARG_BYTEA_PP(3);
    std::string context = FieldContext(args);
    PG_RETURN_TEXT_P(mp::OpenToText(mp::AsBytes(context), mp::VarBytes(envelope)));
}

// mcp._reseal_field(user_id uuid, instance_id uuid, field text, ciphertext bytea) → bytea:
// the value under the active key (the input itself when it already uses it).
MCP_PG_FUNCTION(mcp_reseal_field) {
    FieldArgs args = GetFieldArgs(fcinfo);
    bytea* envelope = PG_GETARG_BYTEA_PP(3);
    std::string context = FieldContext(args);
    bytea* out = mp::ResealIfNotActive(mp::AsBytes(context), mp::VarBytes(envelope));
    if (out == nullptr) PG_RETURN_DATUM(PG_GETARG_DATUM(3));
    PG_RETURN_BYTEA_P(out);
}

// mcp_internal.try_reseal_field(user_id, instance_id, field, ciphertext) → bytea: as
// reseal_field, but NULL when the stored value fails authentication or is malformed (damaged
// or tampered with), so rotation can skip it and go on. The keyring itself is loaded first:
// a missing or wrong key still fails the whole call.
MCP_PG_FUNCTION(mcp_try_reseal_field) {
    FieldArgs args = GetFieldArgs(fcinfo);
    bytea* envelope = PG_GETARG_BYTEA_PP(3);
    std::string context = FieldContext(args);
    mp::CurrentKeyring();
    bytea* out = nullptr;
    try {
        out = mp::ResealIfNotActive(mp::AsBytes(context), mp::VarBytes(envelope));
    } catch (const mp::SqlError& e) {
        if (std::strcmp(e.sqlstate(), mp::sqlstate::kDecryptFailed) != 0 &&
            std::strcmp(e.sqlstate(), mp::sqlstate::kMalformedCiphertext) != 0)
            throw;
        PG_RETURN_NULL();
    }
    if (out == nullptr) PG_RETURN_DATUM(PG_GETARG_DATUM(3));
    PG_RETURN_BYTEA_P(out);
}

// mcp._oauth_pkce() → record(state text, code_verifier text, code_challenge text): a random
// single-use state (256 bits), a PKCE verifier (256 bits) and its S256 challenge, all
// base64url without padding (RFC 7636: 43 characters).
MCP_PG_FUNCTION(mcp_oauth_pkce) {
    uint8_t random[64];
    char state[64], verifier[64], challenge[64];
    uint8_t digest[SHA256_DIGEST_LENGTH];
    mp::ScopedCleanse wipe_random(random, sizeof random);
    mp::ScopedCleanse wipe_state(state, sizeof state);
    mp::ScopedCleanse wipe_verifier(verifier, sizeof verifier);
    if (RAND_bytes(random, sizeof random) != 1)
        throw mp::SqlError(mp::sqlstate::kInternal, "could not generate random bytes");
    Base64Url(random, 32, state);
    Base64Url(random + 32, 32, verifier);
    SHA256(reinterpret_cast<const uint8_t*>(verifier), std::strlen(verifier), digest);
    Base64Url(digest, sizeof digest, challenge);
    const char* s = state;
    const char* v = verifier;
    const char* c = challenge;
    Datum result = mp::PgGuard([&]() {
        TupleDesc tupdesc;
        if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
            elog(ERROR, "return type must be a row type");
        tupdesc = BlessTupleDesc(tupdesc);
        Datum values[3] = {CStringGetTextDatum(s), CStringGetTextDatum(v), CStringGetTextDatum(c)};
        bool nulls[3] = {false, false, false};
        return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
    });
    PG_RETURN_DATUM(result);
}
