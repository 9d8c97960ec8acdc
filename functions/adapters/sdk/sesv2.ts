// The part of the SES v2 client loaded on first use (e-mail to a user without a device channel): see ./kms.ts for why.
export { SendEmailCommand, SESv2Client } from '@aws-sdk/client-sesv2';
