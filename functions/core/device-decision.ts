// The user's answer on the authentication device (docs/device-api.md, POST /device/requests/{id}): approve or deny,
// and an approval may narrow what is granted (RFC 9396 §3): a subset of the requested scope that keeps openid, a
// subset of the requested authorization_details (entries compared as whole JSON values). Absent: everything requested.
import { sameDetail } from './authorization-details.ts';
import type { AuthorizationDetail, AuthRequest } from './model.ts';

export type DeviceDecision = {
  decision: 'approved' | 'denied';
  /** As sent; checked against the request by grantedByDecision. */
  scope?: unknown;
  authorization_details?: unknown;
};

/** What an approval grants when it narrows the request; a field is absent when that part is granted as requested. */
export type Granted = { granted_scope?: string; granted_authorization_details?: AuthorizationDetail[] };

export const DECISION_SHAPE =
  'body must be JSON {"decision": "approve" | "deny"}; an approval may add "scope" and "authorization_details"';

/** The decision body, or why it is not one (400). */
export function parseDecision(contentType: string | undefined, body: string): DeviceDecision | { error: string } {
  if (!contentType?.toLowerCase().startsWith('application/json')) return { error: DECISION_SHAPE };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { error: DECISION_SHAPE };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { error: DECISION_SHAPE };
  const { decision, scope, authorization_details: details } = parsed as Record<string, unknown>;
  if (decision === 'deny') {
    if (scope !== undefined || details !== undefined)
      return { error: 'a denial grants nothing: scope and authorization_details belong to an approval' };
    return { decision: 'denied' };
  }
  if (decision !== 'approve') return { error: DECISION_SHAPE };
  return {
    decision: 'approved',
    ...(scope !== undefined ? { scope } : {}),
    ...(details !== undefined ? { authorization_details: details } : {}),
  };
}

/** Whether the decision narrows anything (then the request must be read to check it). */
export function narrows(decision: DeviceDecision): boolean {
  return decision.scope !== undefined || decision.authorization_details !== undefined;
}

/**
 * RFC 9396 §3: what an approval grants of `request`, or why the narrowing is refused (400). The scope must be
 * space-separated values of the requested scope, openid among them; authorization_details an array of distinct
 * requested entries (possibly empty: none of them).
 */
export function grantedByDecision(
  request: Pick<AuthRequest, 'scope' | 'authorization_details'>,
  decision: DeviceDecision,
): Granted | { error: string } {
  const granted: Granted = {};
  if (decision.scope !== undefined) {
    const { scope } = decision;
    if (typeof scope !== 'string' || scope === '') return { error: 'scope must be a space-separated string' };
    const values = scope.split(' ');
    const requested = new Set(request.scope.split(' '));
    if (values.some((v) => v === '')) return { error: 'scope must be a space-separated string' };
    if (!values.every((v) => requested.has(v))) return { error: 'scope may only hold requested values' };
    if (!values.includes('openid')) return { error: 'scope must keep openid' };
    if (new Set(values).size !== values.length) return { error: 'scope repeats a value' };
    granted.granted_scope = values.join(' ');
  }
  if (decision.authorization_details !== undefined) {
    const details = decision.authorization_details;
    if (!Array.isArray(details)) return { error: 'authorization_details must be an array' };
    const requested = request.authorization_details ?? [];
    const kept: AuthorizationDetail[] = [];
    for (const entry of details) {
      const match = requested.find((r) => sameDetail(r, entry));
      if (!match) return { error: 'authorization_details may only hold requested entries, unchanged' };
      if (kept.includes(match)) return { error: 'authorization_details repeats an entry' };
      kept.push(match);
    }
    granted.granted_authorization_details = kept;
  }
  return granted;
}
