INSERT INTO Slides VALUES ('s1', 'one.svs', 'data/slides/one.svs');
INSERT INTO Annotations VALUES ('s1', 'v2', 'v3', '2022-05-03 00:00:00', 1, 2, 3, 4);
INSERT INTO Annotations VALUES ('s1', NULL, 'v1', '2022-05-01 00:00:00', NULL, NULL, NULL, NULL);
INSERT INTO Annotations VALUES ('s1', 'v1', 'v2', '2022-05-02 00:00:00', 1, 2, 3, 4);
INSERT INTO Slides VALUES ('s2', 'two.svs', 'data/slides/two.svs');
INSERT INTO Annotations VALUES ('s2', NULL, 'other', '2030-01-01 00:00:00', NULL, NULL, NULL, NULL);
