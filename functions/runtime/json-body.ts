// The JSON body of a device API request: parsed, or undefined when there is none or it is not JSON (the use case
// then answers invalid_request with what it expected).
import { bodyText, type HttpEvent } from './http.ts';

export function jsonBody(event: HttpEvent): unknown {
  const text = bodyText(event);
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
