/**
 * Token store interface (SPEC section 3). The default is the encrypted file store; a Redis
 * store for replicas is the expected second backend. Values here are plain strings because
 * the store's own job is to keep them safe at rest; callers wrap them in Secret at once.
 */
export interface StoredTokens {
  refreshToken?: string | undefined;
  accessToken?: string | undefined;
  /** Epoch ms. */
  accessTokenExpiresAt?: number | undefined;
  /** Epoch ms when the access token was obtained; absent from entries written before it was kept. */
  accessTokenObtainedAt?: number | undefined;
  /** sha256 (hex) of the configured refresh-token seed this entry grew from; a new seed in config wins. */
  seedDigest?: string | undefined;
  /** Set while the grant is gone for good; cleared by a successful authorization. */
  needsAuthorization?: { since: number; reason: string } | undefined;
  updatedAt: number;
}

export interface TokenStore {
  get(username: string): Promise<StoredTokens | undefined>;
  /** Durable when the promise resolves (atomic write, fsync, rename). */
  put(username: string, tokens: StoredTokens): Promise<void>;
  delete(username: string): Promise<void>;
  close(): Promise<void>;
}
