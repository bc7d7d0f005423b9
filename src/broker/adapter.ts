/**
 * The storage adapter `oidc-provider` asks for, on our Store: codes, sessions, grants and tokens live in
 * SQLite or PostgreSQL, so they survive restarts and every instance on one database sees them all.
 * See https://github.com/panva/node-oidc-provider/blob/main/docs/README.md#adapter
 */
import { errors, type Adapter, type AdapterFactory, type AdapterPayload } from "oidc-provider";
import type { OidcArtifact, OidcArtifactKeys, Store } from "../store/store.js";

/** Models whose artefacts belong to a grant and go when it is revoked (as oidc-provider's own memory adapter). */
const GRANTABLE = new Set([
  "AccessToken",
  "AuthorizationCode",
  "RefreshToken",
  "DeviceCode",
  "BackchannelAuthenticationRequest",
  "PreAuthorizedCode",
]);

/** Options of the adapter. */
export interface OidcAdapterOptions {
  /** The clock, epoch ms (tests pin it); `Date.now` by default. */
  readonly now?: () => number;
}

/** One model's artefacts (`AuthorizationCode`, `Session`, `Grant`, …) on a Store. */
export class StoreOidcAdapter implements Adapter {
  private readonly now: () => number;

  /** An adapter for `model` on `store`. */
  constructor(
    private readonly store: Store,
    /** The oidc-provider model name. */
    readonly model: string,
    options: OidcAdapterOptions = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Stores (replaces) an artefact that expires in `expiresIn` seconds, or never when not given. */
  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const expiresAt = expiresIn === undefined ? null : this.now() + expiresIn * 1000;
    await this.store.upsertOidcArtifact(
      this.model,
      id,
      JSON.stringify(payload),
      expiresAt,
      this.keys(payload),
    );
  }

  /** The artefact, or undefined when unknown or expired; a consumed one carries `consumed`. */
  async find(id: string): Promise<AdapterPayload | undefined> {
    return toPayload(await this.store.findOidcArtifact(this.model, id, this.now()));
  }

  /** The device flow artefact with this user code. */
  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return toPayload(await this.store.findOidcArtifactByUserCode(this.model, userCode, this.now()));
  }

  /** The session with this uid. */
  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return toPayload(await this.store.findOidcArtifactByUid(this.model, uid, this.now()));
  }

  /**
   * Marks the artefact consumed (a code redeemed, a refresh token rotated). oidc-provider checks
   * `consumed` after find and consumes afterwards, so two requests racing with one code both pass its
   * check: the store consumes atomically, and the loser is treated as a reuse, as oidc-provider treats one
   * it sees: the grant's artefacts are revoked and the request fails with invalid_grant.
   */
  async consume(id: string): Promise<void> {
    if (await this.store.consumeOidcArtifact(this.model, id, this.now())) return;
    const grantId = (await this.find(id))?.grantId;
    if (GRANTABLE.has(this.model) && typeof grantId === "string") await this.store.revokeOidcGrant(grantId);
    throw new errors.InvalidGrant(`${this.model} already consumed`);
  }

  /** Removes the artefact. */
  async destroy(id: string): Promise<void> {
    await this.store.destroyOidcArtifact(this.model, id);
  }

  /** Removes every artefact of the grant, whichever model it is of. */
  async revokeByGrantId(grantId: string): Promise<void> {
    await this.store.revokeOidcGrant(grantId);
  }

  private keys(payload: AdapterPayload): OidcArtifactKeys {
    const keys: { grantId?: string; userCode?: string; uid?: string } = {};
    if (GRANTABLE.has(this.model) && typeof payload.grantId === "string") keys.grantId = payload.grantId;
    if (typeof payload.userCode === "string") keys.userCode = payload.userCode;
    if (this.model === "Session" && typeof payload.uid === "string") keys.uid = payload.uid;
    return keys;
  }
}

function toPayload(artifact: OidcArtifact | null): AdapterPayload | undefined {
  if (artifact === null) return undefined;
  const payload = JSON.parse(artifact.payload) as AdapterPayload;
  // oidc-provider reads `consumed` as a truthy epoch-seconds value (its memory adapter sets epochTime()).
  return artifact.consumedAt === null
    ? payload
    : { ...payload, consumed: Math.floor(artifact.consumedAt / 1000) };
}

/** The `adapter` option of oidc-provider's configuration: a StoreOidcAdapter per model on `store`. */
export function createOidcAdapter(store: Store, options: OidcAdapterOptions = {}): AdapterFactory {
  return (model) => new StoreOidcAdapter(store, model, options);
}

/**
 * Deletes expired artefacts now and every `intervalMs` until the returned function is called; rows past
 * their expiry are already invisible to `find`, so the sweep only reclaims space. The timer does not keep
 * the process alive; a failed sweep goes to `onError` and the next one tries again.
 */
export function startOidcArtifactSweep(
  store: Store,
  options: { intervalMs: number; now?: () => number; onError: (err: unknown) => void },
): () => void {
  const now = options.now ?? Date.now;
  let running = false;
  const sweep = (): void => {
    // Never two at once on a slow database.
    if (running) return;
    running = true;
    void store
      .deleteExpiredOidcArtifacts(now())
      .catch(options.onError)
      .finally(() => {
        running = false;
      });
  };
  sweep();
  const timer = setInterval(sweep, options.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
