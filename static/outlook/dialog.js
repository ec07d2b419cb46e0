/* The sign-in dialog's last page: hand the new API key to the task pane, which closes us. */
(function () {
  "use strict";
  Office.onReady(function () {
    const element = document.getElementById("connected");
    Office.context.ui.messageParent(JSON.stringify({ apiKey: element.dataset.key }));
  });
})();
