// CIBA §7.1 binding_message: shown on both devices, so it must be short and plainly displayable (§13 invalid_binding_message).
import { OAuthError } from './errors.ts';

export const BINDING_MESSAGE_MAX = 64;

/**
 * Letters, marks, digits, punctuation, symbols and plain spaces in any script; no control or format characters
 * (bidi overrides could make the two screens read differently), no line breaks, no leading/trailing space.
 */
const DISPLAYABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}](?:[\p{L}\p{M}\p{N}\p{P}\p{S} ]*[\p{L}\p{M}\p{N}\p{P}\p{S}])?$/u;

export function validateBindingMessage(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const normalized = value.normalize('NFC');
  if ([...normalized].length > BINDING_MESSAGE_MAX) {
    throw new OAuthError('invalid_binding_message', `binding_message must be at most ${BINDING_MESSAGE_MAX} characters`);
  }
  if (!DISPLAYABLE.test(normalized) || normalized.includes('  ')) {
    throw new OAuthError('invalid_binding_message', 'binding_message must be plain displayable text on one line');
  }
  return normalized;
}
