// A service outside API Gateway (ECS, EKS, a plain Node server) checking a
// wxauth JWT offline: the JWKS is fetched once and cached by `jose`, a new kid
// refetches it. Revocation reaches this check only when the token expires
// (SESSION_TTL_SECONDS); ask GET /session when a route needs it at once.
import { createRemoteJWKSet, jwtVerify } from "jose";

export function wxauthVerifier(issuer, audience = "wxauth") {
  const keys = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`));
  return async (authorization) => {
    const token = /^Bearer (.+)$/i.exec(authorization ?? "")?.[1];
    if (!token) throw new Error("no Bearer token");
    const { payload } = await jwtVerify(token, keys, {
      issuer,
      audience,
      algorithms: ["RS256"],
    });
    return { userId: payload.sub, openid: payload.openid, unionid: payload.unionid };
  };
}

// `node verify.mjs <issuer> <token>`: prints the caller, or exits 1.
if (import.meta.url === `file://${process.argv[1]}`) {
  const [issuer, token] = process.argv.slice(2);
  try {
    console.log(JSON.stringify(await wxauthVerifier(issuer)(`Bearer ${token}`)));
  } catch (err) {
    console.error(`refused: ${err.code ?? err.message}`);
    process.exit(1);
  }
}
