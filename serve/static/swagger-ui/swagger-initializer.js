// Swagger UI on this service's own OpenAPI document. Offline: no validator
// badge (it would call validator.swagger.io), every asset served by `serve`.
// With API keys on, the document itself needs a `read` key: api-key.js keeps
// the tab's key (from `#key=…` or its form); it is sent with the document's
// request and pre-filled in the Authorize dialog, whose bearer header "Try it
// out" then sends (the dialog can set another key; nothing leaves the page).
window.onload = function () {
  var key = window.apiKey.get();
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
    requestInterceptor: function (req) {
      // The document's own request; operations carry the dialog's header.
      if (key && req.url.endsWith("/openapi.json") && !req.headers.Authorization) {
        req.headers.Authorization = "Bearer " + key;
      }
      return req;
    },
    onComplete: function () {
      if (key) window.ui.preauthorizeApiKey("bearerAuth", key);
    },
  });
  // No key, or one that may not read the document: ask for one.
  window.apiKey.fetch("/openapi.json", { method: "GET" });
};
