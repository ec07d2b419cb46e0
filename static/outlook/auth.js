/* Nested app authentication: an Entra ID access token for the connector's API, from the
 * Outlook host through MSAL.js (createNestablePublicClientApplication). Where it is not
 * available (Outlook.com accounts, Exchange on-premises, older clients, no client ID
 * configured) getToken gives null and the pane falls back to a connector API key. */
(function () {
  "use strict";
  let clientPromise = null;
  let config = null;

  async function loadConfig() {
    if (config) return config;
    const response = await fetch("/outlook/config.json", { headers: { Accept: "application/json" } });
    config = response.ok ? await response.json() : {};
    return config;
  }

  function naaSupported() {
    try {
      return !!(window.Office && Office.context && Office.context.requirements &&
        Office.context.requirements.isSetSupported("NestedAppAuth", "1.1"));
    } catch (e) { return false; }
  }

  async function client(settings) {
    if (!clientPromise) {
      clientPromise = window.msal.createNestablePublicClientApplication({
        auth: { clientId: settings.msClientId, authority: "https://login.microsoftonline.com/common" },
      });
    }
    return clientPromise;
  }

  async function getToken() {
    const settings = await loadConfig();
    if (!settings.msClientId || !window.msal || !naaSupported()) return null;
    const request = { scopes: [settings.apiScope] };
    const pca = await client(settings);
    try {
      return (await pca.acquireTokenSilent(request)).accessToken;
    } catch (silentError) {
      try {
        return (await pca.acquireTokenPopup(request)).accessToken;
      } catch (popupError) {
        return null;
      }
    }
  }

  window.ConnectorAuth = { getToken: getToken };
})();
