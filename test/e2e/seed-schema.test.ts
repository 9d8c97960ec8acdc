// One schema for seed files (functions/core/schema.ts): a typo or a wrong type stops the local stack before anything
// is written, naming the field's path and the field that was probably meant; login_hint resolves further login
// identifiers (a personal number) as it does e-mail and phone.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { getAuthRequest } from '../../functions/adapters/store.ts';
import { basic, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';

let w: World | undefined;
after(() => w?.close());

async function refused(extraClients: Record<string, unknown>[], extraUsers: Record<string, unknown>[] = []) {
  const outcome = await startWorld({}, extraClients, extraUsers).then(
    (world) => world,
    (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
  );
  if (!(outcome instanceof Error)) {
    await outcome.close();
    assert.fail('the stack started with a bad seed');
  }
  return outcome.message;
}

const client = { client_id: 'typo-rp', client_secret: SECRET, grant_types: ['urn:openid:params:grant-type:ciba'] };

test('seed typos and wrong types are refused with the field named (and the likely intended one)', async () => {
  assert.match(
    await refused([{ ...client, token_endpoint_auth_metod: 'client_secret_post' }]),
    /clients\[\d+\]\.token_endpoint_auth_metod is not a known field \(did you mean token_endpoint_auth_method\?\)/,
  );
  assert.match(
    await refused([{ ...client, backchannel_user_code_parameter: 'yes' }]),
    /clients\[\d+\]\.backchannel_user_code_parameter must be boolean, got "yes"/,
  );
  assert.match(
    await refused([], [{ sub: 'zed', emial: 'zed@example.com' }]),
    /users\[\d+\]\.emial is not a known field \(did you mean email\?\)/,
  );
  assert.match(
    await refused([], [{ sub: 'zed', identifiers: { 'Personal-Number': '197001011234' } }]),
    /users\[\d+\]\.identifiers\.Personal-Number must be a lowercase name/,
  );
});

test('login_hint resolves a further login identifier (a 12-digit personal number), unique like e-mail', async () => {
  w = await startWorld({}, [], [{ sub: 'pia', identifiers: { personal_number: '197001011234' } }]);
  const res = await postForm(
    `${w.issuer}/bc-authorize`,
    { scope: 'openid', login_hint: '197001011234' },
    {
      authorization: basic('rp', SECRET),
    },
  );
  assert.equal(res.status, 200, res.text);
  const id = sha256b64u(String(res.json.auth_req_id));
  assert.equal((await getAuthRequest(id))?.sub, 'pia');
  const unknown = await postForm(
    `${w.issuer}/bc-authorize`,
    { scope: 'openid', login_hint: '197001019999' },
    {
      authorization: basic('rp', SECRET),
    },
  );
  assert.equal(unknown.json.error, 'unknown_user_id');
});
