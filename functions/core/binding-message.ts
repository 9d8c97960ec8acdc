// CIBA §7.1 binding_message: shown on both devices, so it must be short and plainly displayable
// (§13 invalid_binding_message). The length and an optional pattern are configurable (functions/settings.ts).
import { OAuthError } from './errors.ts';

export type BindingMessagePolicy = {
  /** Longest message, in characters (code points after NFC normalisation). */
  bindingMessageMax: number;
  /** When set, the whole message must match it (anchored, Unicode mode). */
  bindingMessagePattern?: RegExp;
};

/** The defaults of functions/settings.ts: ordinary sentences in any script, up to 128 characters. */
export const DEFAULT_BINDING_MESSAGE_POLICY: BindingMessagePolicy = { bindingMessageMax: 128 };

/**
 * Letters, marks, digits, punctuation, symbols and plain spaces in any script; no control or format characters
 * (bidi overrides could make the two screens read differently), no line breaks, no leading/trailing space.
 */
const DISPLAYABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}](?:[\p{L}\p{M}\p{N}\p{P}\p{S} ]*[\p{L}\p{M}\p{N}\p{P}\p{S}])?$/u;

export function validateBindingMessage(
  value: string | undefined,
  policy: BindingMessagePolicy = DEFAULT_BINDING_MESSAGE_POLICY,
): string | undefined {
  if (value === undefined) return undefined;
  const normalized = value.normalize('NFC');
  const max = policy.bindingMessageMax;
  if ([...normalized].length > max) {
    throw new OAuthError('invalid_binding_message', `binding_message must be at most ${max} characters`);
  }
  if (!DISPLAYABLE.test(normalized) || normalized.includes('  ')) {
    throw new OAuthError('invalid_binding_message', 'binding_message must be plain displayable text on one line');
  }
  if (policy.bindingMessagePattern && !policy.bindingMessagePattern.test(normalized)) {
    throw new OAuthError('invalid_binding_message', 'binding_message does not have the form this server accepts');
  }
  return normalized;
}
