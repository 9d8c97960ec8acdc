// OAuth / CIBA error model: one class, one table of codes with their default HTTP status.
// CIBA Core §13 (backchannel endpoint), §11 + RFC 6749 §5.2 (token endpoint), RFC 6750 §3.1 (userinfo),
// RFC 9449 (DPoP), RFC 9396 (rich authorization requests), RFC 8707 (resource indicators).

export const ERROR_STATUS = {
  invalid_request: 400,
  invalid_scope: 400,
  expired_login_hint_token: 400,
  unknown_user_id: 400,
  unauthorized_client: 400,
  missing_user_code: 400,
  invalid_user_code: 400,
  invalid_binding_message: 400,
  invalid_client: 401,
  access_denied: 403, // §13; the token endpoint answers 400 (§11), see tokenError()
  authorization_pending: 400,
  slow_down: 400,
  expired_token: 400,
  invalid_grant: 400,
  unsupported_grant_type: 400,
  invalid_token: 401,
  // RFC 7591 §3.2.2 dynamic registration
  invalid_client_metadata: 400,
  invalid_redirect_uri: 400,
  // RFC 9449 §5, §7.1, §8, §9 (DPoP); the resource-server forms are 401 with a WWW-Authenticate DPoP challenge
  invalid_dpop_proof: 400,
  use_dpop_nonce: 400,
  // RFC 9396 §5 rich authorization requests, RFC 8707 §2 resource indicators
  invalid_authorization_details: 400,
  invalid_target: 400,
  insufficient_scope: 403,
  server_error: 500,
  temporarily_unavailable: 503,
} as const;

export type OAuthErrorCode = keyof typeof ERROR_STATUS;

export class OAuthError extends Error {
  override readonly name = 'OAuthError';
  readonly error: OAuthErrorCode;
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(
    error: OAuthErrorCode,
    description?: string,
    options: { status?: number; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(description ?? error, { cause: options.cause });
    this.error = error;
    this.status = options.status ?? ERROR_STATUS[error];
    this.headers = options.headers ?? {};
  }

  /** The JSON body: `error` and, when given, `error_description` (restricted to RFC 6749's allowed characters). */
  toJSON(): { error: string; error_description?: string } {
    const description =
      this.message === this.error ? undefined : this.message.replace(/[^\x20-\x21\x23-\x5B\x5D-\x7E]/g, '');
    return description ? { error: this.error, error_description: description } : { error: this.error };
  }
}

/** Token endpoint variant: every error is 400 except invalid_client (401) (CIBA §11, RFC 6749 §5.2). */
export function tokenError(error: OAuthErrorCode, description?: string): OAuthError {
  return new OAuthError(error, description, {
    status: error === 'invalid_client' ? 401 : error === 'server_error' ? 500 : 400,
  });
}
