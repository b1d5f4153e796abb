// Package web embeds the browser client and serves it.
//
// The client is plain HTML, CSS and ES modules with no build step, so what is
// in static/ is exactly what the browser runs. Embedding it keeps p2pchat a
// single binary that works on a LAN with no internet access.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// Static returns the client's files, rooted at static/.
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory exists
	}
	return sub
}

// Handler serves the embedded client.
func Handler() http.Handler {
	return http.FileServerFS(Static())
}
