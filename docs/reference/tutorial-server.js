// The tutorial's Node.js signaling server, with its console.log lines
// removed: the reference p2pchat's figures are compared against in
// docs/benchmarks.md. It is not part of p2pchat and is never built or
// shipped; see docs/benchmarks.md ("Same-machine reference") for how to
// run it. PORT overrides the tutorial's port 9090.
var WebSocketServer = require('ws').Server;
var wss = new WebSocketServer({ port: Number(process.env.PORT || 9090) });

var users = {};

wss.on('connection', function (connection) {
  connection.on('message', function (message) {
    var data;
    try {
      data = JSON.parse(message);
    } catch (e) {
      data = {};
    }

    switch (data.type) {
      case "login":
        if (users[data.name]) {
          sendTo(connection, { type: "login", success: false });
        } else {
          users[data.name] = connection;
          connection.name = data.name;
          sendTo(connection, { type: "login", success: true });
        }
        break;

      case "offer":
        var conn = users[data.name];
        if (conn != null) {
          connection.otherName = data.name;
          sendTo(conn, { type: "offer", offer: data.offer, name: connection.name });
        }
        break;

      case "answer":
        var conn = users[data.name];
        if (conn != null) {
          connection.otherName = data.name;
          sendTo(conn, { type: "answer", answer: data.answer });
        }
        break;

      case "candidate":
        var conn = users[data.name];
        if (conn != null) {
          sendTo(conn, { type: "candidate", candidate: data.candidate });
        }
        break;

      case "leave":
        var conn = users[data.name];
        if (conn != null) {
          conn.otherName = null;
          sendTo(conn, { type: "leave" });
        }
        break;

      default:
        sendTo(connection, { type: "error", message: "Command not found: " + data.type });
        break;
    }
  });

  connection.on("close", function () {
    if (connection.name) {
      delete users[connection.name];
      if (connection.otherName) {
        var conn = users[connection.otherName];
        if (conn != null) {
          conn.otherName = null;
          sendTo(conn, { type: "leave" });
        }
      }
    }
  });

  connection.send("Hello world");
});

function sendTo(connection, message) {
  connection.send(JSON.stringify(message));
}
