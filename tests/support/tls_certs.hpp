#pragma once
// Certificates for the TLS tests, made at test time with the openssl command-line tool in a
// temporary folder: a CA, a server certificate it signed for localhost and 127.0.0.1, a
// self-signed certificate for the same names, and one the CA signed that has already expired.

#include "support/os.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

namespace coring_test {

struct tls_certs {
    temp_dir dir;
    std::string ca = dir.file("ca.pem");
    std::string server_cert = dir.file("server.pem");
    std::string server_key = dir.file("server.key");
    std::string self_signed_cert = dir.file("self.pem");
    std::string self_signed_key = dir.file("self.key");
    std::string expired_cert = dir.file("expired.pem");
    std::string expired_key = dir.file("expired.key");

    tls_certs() {
        const std::string d = dir.path;
        const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        write(d + "/san.ext", "subjectAltName = DNS:localhost, IP:127.0.0.1\n");
        run("openssl req -x509 " + key + " -keyout " + d + "/ca.key -out " + ca + " -days 2 -subj /CN=coring-test-ca");
        run("openssl req " + key + " -keyout " + server_key + " -out " + d + "/server.csr -subj /CN=localhost");
        run("openssl x509 -req -in " + d + "/server.csr -CA " + ca + " -CAkey " + d + "/ca.key -CAcreateserial -out " + server_cert +
            " -days 2 -extfile " + d + "/san.ext");
        run("openssl req -x509 " + key + " -keyout " + self_signed_key + " -out " + self_signed_cert +
            " -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1");
        // Expired: valid from 1 January 2000 to 2 January 2000, through a one-off CA config.
        run("openssl req " + key + " -keyout " + expired_key + " -out " + d + "/expired.csr -subj /CN=localhost");
        run("mkdir -p " + d + "/ca_db");
        write(d + "/ca_db/index.txt", "");
        write(d + "/ca_db/serial", "01\n");
        write(d + "/ca.cnf", "[ca]\ndefault_ca = test\n[test]\ndatabase = " + d + "/ca_db/index.txt\nserial = " + d +
                                 "/ca_db/serial\nnew_certs_dir = " + d + "/ca_db\ndefault_md = sha256\npolicy = any\n[any]\ncommonName = supplied\n");
        run("openssl ca -batch -config " + d + "/ca.cnf -cert " + ca + " -keyfile " + d + "/ca.key -in " + d + "/expired.csr -out " +
            expired_cert + " -startdate 20000101000000Z -enddate 20000102000000Z -extfile " + d + "/san.ext");
    }

private:
    static void write(const std::string& path, const std::string& text) {
        std::ofstream out(path);
        out << text;
        if (!out) throw std::runtime_error("tls_certs: cannot write " + path);
    }
    static void run(const std::string& command) {
        if (std::system((command + " >/dev/null 2>&1").c_str()) != 0) throw std::runtime_error("tls_certs: failed: " + command);
    }
};

}  // namespace coring_test
