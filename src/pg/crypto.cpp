// SQL entry points of the envelope: mcp.encrypt / mcp.decrypt (mcp_admin), and the helpers
// behind mcp.key_status() and mcp.rotate_credentials().
#include "core/envelope.hpp"
#include "core/errors.hpp"
#include "core/nonce_pool.hpp"
#include "core/secure_buffer.hpp"
#include "core/text_check.hpp"
#include "pg/boundary.hpp"
#include "pg/crypto.hpp"
#include "pg/keyring_source.hpp"

#include <string>
#include <vector>

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"
}

namespace mcp_platform {

bytea* SealToBytea(Bytes context, Bytes plaintext) {
    Keyring& ring = CurrentKeyring();
    if (plaintext.size > kMaxPlaintext)
        throw SqlError(sqlstate::kInvalidParameter, "value too large to encrypt");
    size_t total = VARHDRSZ + SealedSize(plaintext.size);
    bytea* out = static_cast<bytea*>(PgGuard([&]() { return palloc(total); }));
    Seal(ring, ProcessNoncePool(), context, plaintext, reinterpret_cast<uint8_t*>(VARDATA(out)));
    SET_VARSIZE(out, total);
    return out;
}

text* OpenToText(Bytes context, Bytes envelope) {
    Keyring& ring = CurrentKeyring();
    (void)EnvelopeKeyVersion(envelope);  // MC103 before any allocation
    size_t size = OpenedSize(envelope.size);
    text* out = static_cast<text*>(PgGuard([&]() { return palloc(VARHDRSZ + size); }));
    char* data = VARDATA(out);
    Open(ring, context, envelope, reinterpret_cast<uint8_t*>(data));
    // ASCII (the usual secret) is valid text in every server encoding; anything else gets the
    // server's full check.
    if (!IsPlainAscii(reinterpret_cast<const uint8_t*>(data), size) &&
        !pg_verify_mbstr(GetDatabaseEncoding(), data, static_cast<int>(size), true)) {
        OPENSSL_cleanse(data, size);
        throw SqlError(sqlstate::kMalformedCiphertext,
                       "decrypted value is not valid text in the database encoding");
    }
    SET_VARSIZE(out, VARHDRSZ + size);
    return out;
}

bytea* ResealIfNotActive(Bytes context, Bytes envelope) {
    Keyring& ring = CurrentKeyring();
    uint32_t version = EnvelopeKeyVersion(envelope);
    if (version == ring.active_version()) return nullptr;
    // One scratch buffer for the backend: rotation re-seals many values per second.
    static SecureBuffer scratch;
    size_t size = OpenedSize(envelope.size);
    if (scratch.size() < size + 1) scratch.Resize(size + 1);
    ScopedCleanse wipe(scratch.data(), size);
    Open(ring, context, envelope, scratch.data());
    return SealToBytea(context, Bytes{scratch.data(), size});
}

}  // namespace mcp_platform

namespace mp = mcp_platform;

// mcp.encrypt(plaintext text, context bytea) → bytea
MCP_PG_FUNCTION(mcp_encrypt) {
    text* plaintext = PG_GETARG_TEXT_PP(0);
    bytea* context = PG_GETARG_BYTEA_PP(1);
    // A detoasted copy of the plaintext is ours to wipe; the caller's own datum (a query
    // constant or a parameter used again) is not.
    bool copied = reinterpret_cast<Pointer>(plaintext) != DatumGetPointer(PG_GETARG_DATUM(0));
    mp::ScopedCleanse wipe(copied ? VARDATA_ANY(plaintext) : nullptr,
                           copied ? VARSIZE_ANY_EXHDR(plaintext) : 0);
    PG_RETURN_BYTEA_P(mp::SealToBytea(mp::VarBytes(context), mp::VarBytes(plaintext)));
}

// mcp.decrypt(ciphertext bytea, context bytea) → text
MCP_PG_FUNCTION(mcp_decrypt) {
    bytea* envelope = PG_GETARG_BYTEA_PP(0);
    bytea* context = PG_GETARG_BYTEA_PP(1);
    PG_RETURN_TEXT_P(mp::OpenToText(mp::VarBytes(context), mp::VarBytes(envelope)));
}

// mcp._envelope_key_version(ciphertext bytea) → integer; NULL when not a well-formed envelope.
MCP_PG_FUNCTION(mcp_envelope_key_version) {
    bytea* envelope = PG_GETARG_BYTEA_PP(0);
    mp::Bytes bytes = mp::VarBytes(envelope);
    if (bytes.size < mp::kEnvelopeOverhead || bytes.data[0] != mp::kEnvelopeFormatV1)
        PG_RETURN_NULL();
    PG_RETURN_INT32(static_cast<int32>(mp::EnvelopeKeyVersion(bytes)));
}

// mcp._common_key_version(bytea, bytea, bytea, bytea, bytea) → integer: the key version all
// non-NULL envelopes share, 0 when they differ, NULL when all are NULL. Kept in
// mcp_credentials.key_version so rotation finds the rows to re-seal without decrypting.
MCP_PG_FUNCTION(mcp_common_key_version) {
    int32 common = -1;
    for (int i = 0; i < PG_NARGS(); ++i) {
        if (PG_ARGISNULL(i)) continue;
        bytea* envelope = PG_GETARG_BYTEA_PP(i);
        int32 version = static_cast<int32>(mp::EnvelopeKeyVersion(mp::VarBytes(envelope)));
        common = (common == -1 || common == version) ? version : 0;
    }
    if (common == -1) PG_RETURN_NULL();
    PG_RETURN_INT32(common);
}

// mcp._active_key_version() → integer (loads and checks the keyring).
MCP_PG_FUNCTION(mcp_active_key_version) {
    PG_RETURN_INT32(static_cast<int32>(mp::CurrentKeyring().active_version()));
}

// mcp._keyring_versions() → TABLE(key_version integer, is_active boolean, fingerprint text)
MCP_PG_FUNCTION(mcp_keyring_versions) {
    mp::Keyring& ring = mp::CurrentKeyring();
    struct Row {
        int32 version;
        bool active;
        char fingerprint[17];
    };
    std::vector<Row> rows;
    for (uint32_t v : ring.Versions()) {
        Row row{static_cast<int32>(v), v == ring.active_version(), {0}};
        const std::string& fp = ring.Get(v).fingerprint();
        std::memcpy(row.fingerprint, fp.c_str(), fp.size() + 1);
        rows.push_back(row);
    }
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    mp::PgGuard([&]() { InitMaterializedSRF(fcinfo, 0); });
    for (const Row& row : rows) {
        const Row* r = &row;
        mp::PgGuard([&]() {
            Datum values[3] = {Int32GetDatum(r->version), BoolGetDatum(r->active),
                               CStringGetTextDatum(r->fingerprint)};
            bool nulls[3] = {false, false, false};
            tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
        });
    }
    return (Datum)0;
}
