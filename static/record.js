// The record page (connector/templates/record.html): its times come in UTC from the server,
// each in a <time datetime="..." data-local> element; this shows them in the reader's own
// time zone, formatted as connector.lookup.view_models.local_time does ("12 Nov 14:02",
// with the year when it is not this year). Without this script the UTC time stays.
(function () {
  "use strict";

  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function twoDigits(number) {
    return (number < 10 ? "0" : "") + number;
  }

  function localTime(moment, now) {
    var day = moment.getDate() + " " + MONTHS[moment.getMonth()];
    if (moment.getFullYear() !== now.getFullYear()) {
      day += " " + moment.getFullYear();
    }
    return day + " " + twoDigits(moment.getHours()) + ":" + twoDigits(moment.getMinutes());
  }

  function localize() {
    var now = new Date();
    var zone = "";
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (error) {
      zone = "";
    }
    var times = document.querySelectorAll("time[data-local]");
    for (var i = 0; i < times.length; i++) {
      var element = times[i];
      var moment = new Date(element.getAttribute("datetime"));
      if (isNaN(moment.getTime())) {
        continue; // not a time we can read: the UTC text stays
      }
      element.title = element.textContent; // the UTC time, on hover
      element.textContent = localTime(moment, now);
      if (zone) {
        element.setAttribute("data-zone", zone);
      }
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", localize);
  } else {
    localize();
  }
})();
