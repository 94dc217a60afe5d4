import type { EmailMessage } from './mailer';

/*
 * The emails the server sends, in plain text. Lines stay short and ASCII where we write them, so
 * relays pass them unchanged; names and tenant names are the users' own.
 */

export function invitationEmail(input: {
  to: string;
  tenantName: string;
  role: string;
  code: string;
  expiresAt: Date;
  /** Whether `to` already has an account: the invitee learns it, the inviter never does. */
  hasAccount: boolean;
}): EmailMessage {
  const how = input.hasAccount
    ? [
        'This address already has a Fleet account: sign in with it and call',
        'acceptInvitation with this code (it also asks you for a new password).',
      ]
    : ['You have no Fleet account yet: call joinByInvitation with this code,', 'your name and a password of your choice.'];
  return {
    kind: 'invitation',
    to: input.to,
    subject: `You are invited to ${input.tenantName} on Fleet`,
    text: [
      `You are invited to join ${input.tenantName} on Fleet as ${input.role}.`,
      '',
      `Invitation code: ${input.code}`,
      '',
      ...how,
      `The code expires at ${input.expiresAt.toISOString()}.`,
      'If you did not expect this invitation, ignore this email.',
    ].join('\n'),
  };
}

export function passwordResetEmail(input: { to: string; code: string; validMinutes: number }): EmailMessage {
  return {
    kind: 'password_reset',
    to: input.to,
    subject: 'Your Fleet password reset code',
    text: [
      `Someone asked to reset the password of the Fleet account ${input.to}.`,
      '',
      `Reset code: ${input.code}`,
      '',
      `It works once, within ${input.validMinutes} minutes: call resetPassword with`,
      'your email, this code and a new password. That signs out every session',
      'of the account.',
      'If you did not ask for this, ignore this email: your password stays.',
    ].join('\n'),
  };
}

export function verificationEmail(input: { to: string; code: string; validHours: number }): EmailMessage {
  return {
    kind: 'email_verification',
    to: input.to,
    subject: 'Verify your Fleet email address',
    text: [
      `A Fleet account was created for ${input.to}.`,
      '',
      `Verification code: ${input.code}`,
      '',
      `Sign in and call verifyEmail with this code within ${input.validHours} hours;`,
      'until then no notifications are emailed to this address.',
      'If you know nothing of this account, ignore this email.',
    ].join('\n'),
  };
}

export function notificationEmail(input: { to: string; tenantName: string; summary: string; details: string[] }): EmailMessage {
  return {
    kind: 'notification',
    to: input.to,
    subject: `[${input.tenantName}] ${input.summary}`,
    text: [input.summary, '', ...input.details, '', `You receive this as a member of ${input.tenantName} on Fleet.`].join('\n'),
  };
}
