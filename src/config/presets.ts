/**
 * Built-in providers. An account with `provider: google` or `provider: microsoft` gets these
 * endpoints, scopes and upstream servers; a `providers.google` / `providers.microsoft` entry in
 * the config file overrides any of them (client_id, client_secret, tenant...).
 */
export interface PresetServers {
  imap: { host: string; port: number; tls: 'implicit' | 'starttls' };
  pop3: { host: string; port: number; tls: 'implicit' | 'starttls' };
  smtp: { host: string; port: number; tls: 'implicit' | 'starttls' };
}

export interface Preset {
  token_url: string;
  authorize_url: string;
  device_authorization_url?: string;
  scope: string;
  servers: PresetServers;
}

export const PRESET_NAMES = ['google', 'microsoft'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export function isPresetName(name: string): name is PresetName {
  return (PRESET_NAMES as readonly string[]).includes(name);
}

export function presetFor(name: PresetName, tenant = 'common'): Preset {
  switch (name) {
    case 'google':
      return {
        token_url: 'https://oauth2.googleapis.com/token',
        authorize_url: 'https://accounts.google.com/o/oauth2/v2/auth',
        // Google's device flow refuses the mail scope, so no device_authorization_url here.
        scope: 'https://mail.google.com/',
        servers: {
          imap: { host: 'imap.gmail.com', port: 993, tls: 'implicit' },
          pop3: { host: 'pop.gmail.com', port: 995, tls: 'implicit' },
          smtp: { host: 'smtp.gmail.com', port: 465, tls: 'implicit' },
        },
      };
    case 'microsoft': {
      const base = `https://login.microsoftonline.com/${encodeURIComponent(tenant)}/oauth2/v2.0`;
      return {
        token_url: `${base}/token`,
        authorize_url: `${base}/authorize`,
        device_authorization_url: `${base}/devicecode`,
        scope:
          'offline_access https://outlook.office.com/IMAP.AccessAsUser.All ' +
          'https://outlook.office.com/POP.AccessAsUser.All https://outlook.office.com/SMTP.Send',
        servers: {
          imap: { host: 'outlook.office365.com', port: 993, tls: 'implicit' },
          pop3: { host: 'outlook.office365.com', port: 995, tls: 'implicit' },
          smtp: { host: 'smtp.office365.com', port: 587, tls: 'starttls' },
        },
      };
    }
  }
}

/** The scope Microsoft 365 wants for app-only (client credentials) mail access. */
export const MICROSOFT_APP_ONLY_SCOPE = 'https://outlook.office365.com/.default';
