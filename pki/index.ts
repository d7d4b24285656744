// Public surface of `pki/`: X.509 startup kits for a federation (CA, coordinator, sites).
export {
  provisionFederation,
  addSite,
  DEFAULT_COORDINATOR_HOSTS,
  DEFAULT_VALIDITY_DAYS,
  DEFAULT_CA_VALIDITY_DAYS,
  type ProvisionOptions,
  type ProvisionResult,
  type AddSiteOptions,
  type AddSiteResult,
} from './provision.ts';
export { loadKit, KitError, caDir, coordinatorKitDir, siteKitDir, type Kit, type KitRole } from './kit.ts';
export {
  ProvisionError,
  validateSiteId,
  validateFederationId,
  SITE_ID_PATTERN,
  SITE_URI_PREFIX,
  OID_CLIENT_AUTH,
  OID_SERVER_AUTH,
} from './x509.ts';
export {
  certificateKeySha256,
  readRoster,
  rosterPath,
  ROSTER_FILE,
  type RosterChange,
  type RosterContent,
  type RosterEntry,
} from './roster.ts';
export { currentRoster, initRoster } from './rotate.ts';
