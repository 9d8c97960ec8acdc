// functions/settings.ts and functions/config.ts: the one definition of the server settings, parsed and validated.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../functions/config.ts';
import { parseSetting, readSetting, readSettings, SETTINGS, type Setting } from '../../functions/settings.ts';

const BASE = { ISSUER: 'http://localhost:8080', CIBA_LOCAL: 'true', TABLE_NAME: 't', KEYS_FILE: '/tmp/keys.json' };

test('defaults: every setting with a default parses to it', () => {
  const s = readSettings({});
  assert.equal(s.bindingMessageMax, 128);
  assert.equal(s.maxPendingPerUser, 5);
  assert.equal(s.rateLimitPerClient, undefined, 'no client quota unless set');
  assert.deepEqual(s.rateLimitPerUser, { count: 60, windowSeconds: 300 });
  assert.equal(s.logLevel, 'info');
  assert.equal(s.bindingMessagePattern, undefined);
});

test('every default is itself a valid value of its setting', () => {
  for (const [name, setting] of Object.entries(SETTINGS) as [string, Setting][]) {
    if (setting.default !== undefined) assert.doesNotThrow(() => parseSetting(setting, String(setting.default)), name);
  }
});

test('a bad value stops the process with a message naming the variable and what it accepts', () => {
  assert.throws(
    () => readSetting('pollInterval', { CIBA_POLL_INTERVAL: '0' }),
    /CIBA_POLL_INTERVAL must be whole seconds from 1 to 60, got "0"/,
  );
  assert.throws(() => readSetting('pollInterval', { CIBA_POLL_INTERVAL: '1.5' }), /CIBA_POLL_INTERVAL/);
  assert.throws(() => readSetting('rateLimitPerUser', { CIBA_RATE_LIMIT_USER: '10' }), /CIBA_RATE_LIMIT_USER must be/);
  assert.throws(() => readSetting('logLevel', { LOG_LEVEL: 'verbose' }), /LOG_LEVEL must be `debug` or `info`/);
  assert.throws(
    () => readSetting('bindingMessagePattern', { CIBA_BINDING_MESSAGE_PATTERN: '[' }),
    /CIBA_BINDING_MESSAGE_PATTERN/,
  );
  assert.throws(() => loadConfig({ ...BASE, CIBA_MAX_PENDING_PER_USER: '51' }), /CIBA_MAX_PENDING_PER_USER/);
});

test('a binding message pattern applies to the whole message', () => {
  const re = readSetting('bindingMessagePattern', { CIBA_BINDING_MESSAGE_PATTERN: '[A-Z0-9-]+' })!;
  assert.equal(re.test('ORDER-4711'), true);
  assert.equal(re.test('x ORDER-4711'), false);
  assert.equal(re.test('ORDER-4711 x'), false);
});

test('loadConfig: cross-setting rules and derived values', () => {
  const cfg = loadConfig(BASE);
  assert.deepEqual(cfg.keys, { source: 'file', file: '/tmp/keys.json' });
  assert.deepEqual(cfg.sealing, { source: 'file', file: '/tmp/sealing-key.json' });
  assert.equal(cfg.limits.client, undefined);
  assert.throws(
    () => loadConfig({ ...BASE, CIBA_DEFAULT_EXPIRES_IN: '5' }),
    /CIBA_DEFAULT_EXPIRES_IN must be from 10 to 1800/,
  );
  assert.throws(() => loadConfig({ ...BASE, CIBA_LOCAL: 'false' }), /ISSUER must be https/);
  assert.throws(() => loadConfig({ ...BASE, TABLE_NAME: '' }), /TABLE_NAME is required/);
  assert.throws(() => loadConfig({ ISSUER: 'https://x.example', TABLE_NAME: 't' }), /KMS_RSA_KEY_ID is required/);
});
