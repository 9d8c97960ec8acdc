// Infrastructure tests: the mutual-TLS (RFC 8705) custom domain of the synthesized CibaStack.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Stack } from 'aws-cdk-lib';
import { Certificate } from 'aws-cdk-lib/aws-certificatemanager';
import type { ICertificate } from 'aws-cdk-lib/aws-certificatemanager';
import type { CibaServerProps } from '../../infra/ciba-construct.ts';
import {
  FUNCTION_NAMES,
  type Json,
  asArray,
  type Synth,
  synth,
  resourcesOf,
  logicalId,
  functionInfo,
  allPolicyDocuments,
  defaultStack,
} from './support.ts';

// ---- Tests ------------------------------------------------------------------------------------------------

let s: Synth;
before(() => {
  s = defaultStack();
});

describe('CibaServer: mutual TLS (RFC 8705) custom domain', () => {
  const CERT_ARN = 'arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555';
  const certificate = (): ICertificate => Certificate.fromCertificateArn(new Stack(), 'Cert', CERT_ARN);
  const MTLS_CONTEXT = {
    mtlsDomainName: 'mtls.example.com',
    mtlsCertificateArn: CERT_ARN,
    mtlsTruststoreUri: 's3://truststore-bucket/ca.pem',
  };
  let m: Synth;
  before(() => {
    m = synth(
      {
        mtls: {
          domainName: 'mtls.auth.example.com',
          certificate: certificate(),
          truststoreUri: 's3://ciba-truststore/mtls/truststore.pem',
          truststoreVersion: 'v3Xyz.abc',
        },
      },
      'Mtls',
    );
  });

  it('is absent by default: no custom domain, no mapping, no CIBA_MTLS_BASE_URL, no mTLS outputs', () => {
    assert.equal(resourcesOf(s.json, 'AWS::ApiGatewayV2::DomainName').length, 0);
    assert.equal(resourcesOf(s.json, 'AWS::ApiGatewayV2::ApiMapping').length, 0);
    assert.equal(s.stack.server.mtlsDomain, undefined);
    assert.equal(s.stack.server.mtlsBaseUrl, undefined);
    for (const name of FUNCTION_NAMES)
      assert.ok(!('CIBA_MTLS_BASE_URL' in functionInfo(s, name).props.Environment.Variables), name);
    assert.equal(s.json.Outputs.MtlsBaseUrl, undefined);
    assert.equal(s.json.Outputs.MtlsDomainTarget, undefined);
  });

  it('a regional custom domain with TLS 1.2, the certificate and the S3 truststore (bucket, key, version)', () => {
    const domains = resourcesOf(m.json, 'AWS::ApiGatewayV2::DomainName');
    assert.equal(domains.length, 1);
    const [domainId, domain] = domains[0]!;
    assert.equal(domainId, logicalId(m.stack, m.stack.server.mtlsDomain!));
    assert.equal(domain.Properties.DomainName, 'mtls.auth.example.com');
    assert.deepEqual(domain.Properties.DomainNameConfigurations, [
      { CertificateArn: CERT_ARN, EndpointType: 'REGIONAL', SecurityPolicy: 'TLS_1_2' },
    ]);
    assert.deepEqual(domain.Properties.MutualTlsAuthentication, {
      TruststoreUri: 's3://ciba-truststore/mtls/truststore.pem',
      TruststoreVersion: 'v3Xyz.abc',
    });
  });

  it("is mapped (root path) to the HTTP API's $default stage, after the stage exists; the execute-api endpoint stays enabled", () => {
    const mappings = resourcesOf(m.json, 'AWS::ApiGatewayV2::ApiMapping');
    assert.equal(mappings.length, 1);
    const [, mapping] = mappings[0]!;
    const domainId = logicalId(m.stack, m.stack.server.mtlsDomain!);
    assert.deepEqual(mapping.Properties.ApiId, { Ref: logicalId(m.stack, m.stack.server.api) });
    assert.deepEqual(mapping.Properties.DomainName, { Ref: domainId });
    assert.equal(mapping.Properties.Stage, '$default');
    assert.equal(mapping.Properties.ApiMappingKey, undefined);
    const [[stageId]] = resourcesOf(m.json, 'AWS::ApiGatewayV2::Stage') as [[string, Json]];
    assert.ok(
      asArray(mapping.DependsOn).includes(stageId),
      'a mapping to a stage that does not exist yet fails to deploy',
    );
    const [[, api]] = resourcesOf(m.json, 'AWS::ApiGatewayV2::Api') as [[string, Json]];
    assert.notEqual(api.Properties.DisableExecuteApiEndpoint, true);
    // The issuer is still the execute-api endpoint; the mTLS domain is only the alias.
    assert.deepEqual(functionInfo(m, 'discovery').props.Environment.Variables.ISSUER, {
      'Fn::GetAtt': [logicalId(m.stack, m.stack.server.api), 'ApiEndpoint'],
    });
  });

  it('sets CIBA_MTLS_BASE_URL=https://<domain> on every function and exposes it', () => {
    assert.equal(m.stack.server.mtlsBaseUrl, 'https://mtls.auth.example.com');
    for (const name of FUNCTION_NAMES)
      assert.equal(
        functionInfo(m, name).props.Environment.Variables.CIBA_MTLS_BASE_URL,
        'https://mtls.auth.example.com',
        name,
      );
  });

  it('needs no IAM grants: no function or role gets S3 or API Gateway permissions', () => {
    for (const doc of allPolicyDocuments(m.json)) {
      for (const st of doc.statements)
        assert.ok(!st.Action.some((a) => /^(s3|apigateway|acm):/.test(a)), `${doc.where}: ${JSON.stringify(st)}`);
    }
  });

  it('from context (-c mtlsDomainName, mtlsCertificateArn, mtlsTruststoreUri): the domain, the env and the MtlsBaseUrl / MtlsDomainTarget outputs', () => {
    const c = synth({}, 'MtlsContext', MTLS_CONTEXT);
    const [[domainId, domain]] = resourcesOf(c.json, 'AWS::ApiGatewayV2::DomainName') as [[string, Json]];
    assert.equal(domain.Properties.DomainName, 'mtls.example.com');
    assert.deepEqual(domain.Properties.DomainNameConfigurations, [
      { CertificateArn: CERT_ARN, EndpointType: 'REGIONAL', SecurityPolicy: 'TLS_1_2' },
    ]);
    // Without a version: the latest object.
    assert.deepEqual(domain.Properties.MutualTlsAuthentication, { TruststoreUri: 's3://truststore-bucket/ca.pem' });
    assert.equal(resourcesOf(c.json, 'AWS::ApiGatewayV2::ApiMapping').length, 1);
    for (const name of FUNCTION_NAMES)
      assert.equal(
        functionInfo(c, name).props.Environment.Variables.CIBA_MTLS_BASE_URL,
        'https://mtls.example.com',
        name,
      );
    assert.equal(c.json.Outputs.MtlsBaseUrl.Value, 'https://mtls.example.com');
    assert.deepEqual(c.json.Outputs.MtlsDomainTarget.Value, { 'Fn::GetAtt': [domainId, 'RegionalDomainName'] });
    assert.equal(Object.keys(c.json.Outputs).length, 15);
    // The admin CLI's --stack gets the mTLS base URL from the settings output (mTLS clients can then be added).
    assert.equal(JSON.parse(c.json.Outputs.ServerSettings.Value).CIBA_MTLS_BASE_URL, 'https://mtls.example.com');

    const versioned = synth({}, 'MtlsContextVersion', { ...MTLS_CONTEXT, mtlsTruststoreVersion: 'abc123' });
    const [[, vDomain]] = resourcesOf(versioned.json, 'AWS::ApiGatewayV2::DomainName') as [[string, Json]];
    assert.equal(vDomain.Properties.MutualTlsAuthentication.TruststoreVersion, 'abc123');
  });

  it('context: all three keys or none; not together with the mtls prop; a real ACM ARN', () => {
    assert.throws(
      () => synth({}, 'Partial', { mtlsDomainName: 'mtls.example.com' }),
      /missing: mtlsCertificateArn, mtlsTruststoreUri/,
    );
    assert.throws(
      () => synth({}, 'Partial', { mtlsDomainName: 'mtls.example.com', mtlsCertificateArn: CERT_ARN }),
      /mutual TLS needs all of .*missing: mtlsTruststoreUri$/,
    );
    assert.throws(
      () => synth({}, 'Partial', { mtlsTruststoreVersion: 'v1' }),
      /missing: mtlsDomainName, mtlsCertificateArn, mtlsTruststoreUri/,
    );
    assert.throws(
      () => synth({}, 'BadArn', { ...MTLS_CONTEXT, mtlsCertificateArn: 'not-an-arn' }),
      /mtlsCertificateArn is not an ACM certificate ARN/,
    );
    assert.throws(
      () =>
        synth(
          { mtls: { domainName: 'a.example.com', certificate: certificate(), truststoreUri: 's3://b/k.pem' } },
          'Both',
          MTLS_CONTEXT,
        ),
      /both in props \(server\.mtls\) and in context/,
    );
  });

  it('rejects a truststore that is not s3://bucket/key, a domain that is not a host name, and the mTLS domain as issuer', () => {
    const mtls = (over: Partial<NonNullable<CibaServerProps['mtls']>>): CibaServerProps => ({
      mtls: {
        domainName: 'mtls.example.com',
        certificate: certificate(),
        truststoreUri: 's3://truststore-bucket/ca.pem',
        ...over,
      },
    });
    for (const truststoreUri of [
      'https://truststore-bucket.s3.amazonaws.com/ca.pem',
      's3://truststore-bucket',
      's3://truststore-bucket/',
      's3://Bad_Bucket/ca.pem',
      's3://truststore-bucket/dir/',
    ]) {
      assert.throws(
        () => synth(mtls({ truststoreUri }), 'BadTruststore'),
        /mtls\.truststoreUri must be s3:\/\/<bucket>\/<key>/,
        truststoreUri,
      );
    }
    for (const domainName of ['https://mtls.example.com', 'mtls.example.com/', 'localhost', '']) {
      assert.throws(() => synth(mtls({ domainName }), 'BadDomain'), /mtls\.domainName must be a host name/, domainName);
    }
    assert.throws(
      () => synth({ ...mtls({}), issuer: 'https://MTLS.example.com' }, 'MtlsIssuer'),
      /issuer must not be the mTLS domain/,
    );
  });
});

// ---- Monitoring -------------------------------------------------------------------------------------------
