# The Debian package: sluiced and sluicectl, the schemas and mappings, one configuration per
# half in /etc/sluice (conffiles), the systemd unit, the sluice account and its directories.
# Binaries are stripped; their debug symbols go into sluice-dbgsym (a .ddeb beside it).
include(GNUInstallDirs)

install(TARGETS sluiced sluicectl RUNTIME DESTINATION bin)
install(FILES ${CMAKE_SOURCE_DIR}/schemas/case-1.xsd ${CMAKE_SOURCE_DIR}/schemas/catalog-1.xsd
              ${CMAKE_SOURCE_DIR}/schemas/common-1.xsd ${CMAKE_SOURCE_DIR}/schemas/envelope-1.xsd
              ${CMAKE_SOURCE_DIR}/schemas/feedback-1.xsd ${CMAKE_SOURCE_DIR}/schemas/public-1.xsd
              ${CMAKE_SOURCE_DIR}/schemas/receipt-1.xsd ${CMAKE_SOURCE_DIR}/schemas/stats-1.xsd
        DESTINATION share/sluice/schemas)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/schemas/examples DESTINATION share/sluice/schemas)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/adapters/mappings/ DESTINATION share/sluice/mappings)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/outer.toml ${CMAKE_SOURCE_DIR}/deploy/inner.toml
        DESTINATION /etc/sluice)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/sluiced.toml DESTINATION share/doc/sluice/examples)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/architecture.md
              ${CMAKE_SOURCE_DIR}/docs/ferry.md
        DESTINATION share/doc/sluice)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/sluiced@.service DESTINATION /lib/systemd/system)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/sysusers.conf DESTINATION lib/sysusers.d
        RENAME sluice.conf)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/tmpfiles.conf DESTINATION lib/tmpfiles.d
        RENAME sluice.conf)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_NAME sluice)
set(CPACK_PACKAGE_VENDOR "Sluice")
set(CPACK_PACKAGE_CONTACT "Sluice maintainers <sluice@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "secure data-exchange gateway for e-government (two halves joined by a ferry)")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # dependencies from the binaries' libraries
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd | adduser")
set(CPACK_DEBIAN_DEBUGINFO_PACKAGE ON)
# The dbgsym step moves the debug sections out and strips the binaries itself (objcopy);
# CPACK_STRIP_FILES would strip them first and leave it nothing to move.
# /etc files are conffiles: an administrator's edits survive upgrades, and remove keeps them.
file(WRITE ${CMAKE_BINARY_DIR}/packaging/conffiles "/etc/sluice/outer.toml\n/etc/sluice/inner.toml\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/packaging/conffiles ${CMAKE_SOURCE_DIR}/packaging/postinst
    ${CMAKE_SOURCE_DIR}/packaging/prerm ${CMAKE_SOURCE_DIR}/packaging/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
